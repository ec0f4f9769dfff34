import sql, { type Sql } from 'sql-template-tag';

import type { SqlClient } from '../../db/sql.js';
import { conflictOnDuplicate } from '../../shared/conflict.js';
import { paginate, type Connection, type PageArgs } from '../../shared/connection.js';
import { NotFoundError, requireUuid } from '../../shared/errors.js';
import { and, readModel, selectList } from '../../shared/read-model.js';
import { inTransaction, type Scope, type Viewer } from '../../shared/scope.js';
import { isHumanAdmin } from '../../shared/viewer.js';
import type { AuditService } from '../audit/index.js';
import { KnowledgeEntry } from './knowledge-entry.entity.js';
import type { CreateKnowledgeEntryInput, KnowledgeEntryWhere, UpdateKnowledgeEntryInput } from './knowledge.inputs.js';

/**
 * The document every search reads: EXACTLY the expression of the GIN index
 * knowledge_entries_fulltext_index (see knowledge-entry.entity.ts), so that PostgreSQL
 * answers `@@` from the index instead of parsing every entry.
 */
const DOCUMENT = sql`to_tsvector('english', t.title || ' ' || t.content)`;

/** Largest `first` of searchKnowledge. */
export const MAX_SEARCH_RESULTS = 50;
/** What retrieval reads of a long prompt: enough words to find the topic, a bounded parse. */
const RETRIEVAL_PROMPT_CHARS = 2000;
/** What each retrieved entry contributes to the context at most (characters). */
export const RETRIEVAL_CONTENT_CHARS = 2000;

export interface RetrievedEntry {
  id: string;
  title: string;
  category: string | null;
  /** At most RETRIEVAL_CONTENT_CHARS of the content. */
  content: string;
  rank: number;
}

const snapshot = (k: KnowledgeEntry) => ({
  title: k.title,
  category: k.category ?? null,
  metadata: k.metadata,
  externalVectorId: k.externalVectorId ?? null,
  active: k.active,
  contentLength: k.content.length,
});

export interface KnowledgeDeps {
  db: SqlClient;
  audit: AuditService;
}

/**
 * The knowledge base. Admins write it; everyone signed in reads and searches the
 * active entries (admins also the deactivated ones, which no search or retrieval uses).
 * Search is PostgreSQL full-text search in English (stemming: "styling" finds "styles").
 */
export class KnowledgeService {
  constructor(private readonly deps: KnowledgeDeps) {}

  // ---------- reads ----------

  /** SQL condition over `t`: the entries the viewer may read. */
  visible(viewer: Viewer): Sql {
    return isHumanAdmin(viewer) ? sql`TRUE` : sql`t.active`;
  }

  list(
    viewer: Viewer,
    fields: Iterable<string>,
    where: KnowledgeEntryWhere,
    page: PageArgs,
  ): Promise<Connection<Record<string, unknown>>> {
    const admin = isHumanAdmin(viewer);
    const search = where.search?.trim();
    return paginate(
      this.deps.db,
      {
        model: readModel(KnowledgeEntry),
        fields,
        where: and([
          this.visible(viewer),
          admin && where.active != null ? sql`t.active = ${where.active}` : null,
          where.category ? sql`t.category = ${where.category}` : null,
          where.externalVectorId ? sql`t.external_vector_id = ${where.externalVectorId}` : null,
          search ? sql`${DOCUMENT} @@ websearch_to_tsquery('english', ${search})` : null,
        ]),
        sort: { property: 'id', direction: 'DESC', type: 'uuid' },
      },
      page,
    );
  }

  /**
   * Full-text search of the active entries: web search syntax ("quoted phrase", -not,
   * or), English stemming, best first by ts_rank (ties: newest first).
   */
  async search(
    fields: Iterable<string>,
    query: string,
    category: string | null | undefined,
    first: number,
  ): Promise<{ entry: Record<string, unknown>; rank: number }[]> {
    const q = query.trim();
    if (!q) return [];
    const rows = await this.deps.db.query<Record<string, unknown> & { __rank: number }>(sql`
      SELECT ${selectList(readModel(KnowledgeEntry), fields, 't')}, ts_rank(${DOCUMENT}, websearch_to_tsquery('english', ${q})) AS "__rank"
        FROM knowledge_entries t
       WHERE t.active AND ${DOCUMENT} @@ websearch_to_tsquery('english', ${q}) AND ${category ? sql`t.category = ${category}` : sql`TRUE`}
       ORDER BY "__rank" DESC, t.id DESC
       LIMIT ${first}`);
    return rows.map((r) => ({ entry: r, rank: r.__rank }));
  }

  /**
   * The entries that best match a chat prompt, for the assistant's context (retrieval-
   * augmented answers). The prompt goes through websearch_to_tsquery like a search, with one
   * difference: its terms are OR-ed instead of AND-ed. A search box gets a few chosen
   * words that must all match; a chat message is a sentence, and requiring every one of
   * its words would almost never match anything. ts_rank then puts the entries that
   * match more of the words, more often, first. Quotes and dashes are read as spaces so
   * that a hyphen in a sentence cannot turn into a negation (which, OR-ed, would match
   * nearly everything). Same indexed expression, so the GIN index still serves it.
   */
  async bestMatches(prompt: string, limit: number): Promise<RetrievedEntry[]> {
    const words = prompt
      .slice(0, RETRIEVAL_PROMPT_CHARS)
      .replace(/["\-\u2010-\u2015]/g, ' ')
      .trim();
    if (!words || limit <= 0) return [];
    const query = sql`replace(websearch_to_tsquery('english', ${words})::text, ' & ', ' | ')::tsquery`;
    return this.deps.db.query<RetrievedEntry>(sql`
      SELECT t.id, t.title, t.category, left(t.content, ${RETRIEVAL_CONTENT_CHARS}) AS content, ts_rank(${DOCUMENT}, ${query}) AS rank
        FROM knowledge_entries t
       WHERE t.active AND ${DOCUMENT} @@ ${query}
       ORDER BY rank DESC, t.id DESC
       LIMIT ${limit}`);
  }

  // ---------- writes (admins; the resolver says so) ----------

  create(scope: Scope, input: CreateKnowledgeEntryInput): Promise<KnowledgeEntry> {
    return this.unique(input.externalVectorId, () =>
      inTransaction(scope, async (tx) => {
        const k = tx.em.create(KnowledgeEntry, {
          title: input.title.trim(),
          content: input.content,
          category: input.category ?? null,
          metadata: input.metadata ?? {},
          externalVectorId: input.externalVectorId ?? null,
        });
        await tx.em.flush();
        this.deps.audit.record(tx, {
          action: 'knowledge.create',
          entityType: 'KnowledgeEntry',
          entityId: k.id,
          after: snapshot(k),
        });
        return k;
      }),
    );
  }

  update(scope: Scope, input: UpdateKnowledgeEntryInput): Promise<KnowledgeEntry> {
    return this.unique(input.externalVectorId, () =>
      this.change(scope, input.id, 'knowledge.update', (k) => {
        if (input.title) k.title = input.title.trim();
        if (input.content) k.content = input.content;
        if (input.category !== undefined) k.category = input.category;
        if (input.metadata) k.metadata = input.metadata;
        if (input.externalVectorId !== undefined) k.externalVectorId = input.externalVectorId;
        if (input.active != null) k.active = input.active;
      }),
    );
  }

  /** Soft delete (is_active): out of searches and retrieval, kept for the messages that used it. */
  deactivate(scope: Scope, id: string): Promise<KnowledgeEntry> {
    return this.change(scope, id, 'knowledge.deactivate', (k) => {
      k.active = false;
    });
  }

  private change(
    scope: Scope,
    id: string,
    action: string,
    apply: (k: KnowledgeEntry) => void,
  ): Promise<KnowledgeEntry> {
    const entryId = requireUuid(id);
    return inTransaction(scope, async (tx) => {
      const k = await tx.em.findOne(KnowledgeEntry, entryId);
      if (!k) throw new NotFoundError('KnowledgeEntry', entryId);
      const before = snapshot(k);
      apply(k);
      await tx.em.flush();
      this.deps.audit.record(tx, { action, entityType: 'KnowledgeEntry', entityId: k.id, before, after: snapshot(k) });
      return k;
    });
  }

  /** externalVectorId is unique: a second entry with the same one is a CONFLICT, not a 500. */
  private async unique<T>(externalVectorId: string | null | undefined, fn: () => Promise<T>): Promise<T> {
    return conflictOnDuplicate(
      () => fn(),
      `Another knowledge entry already has the external vector id ${externalVectorId}`,
      {
        field: 'externalVectorId',
      },
    );
  }
}
