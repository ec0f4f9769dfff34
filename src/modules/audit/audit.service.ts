import type { EntityManager } from '@mikro-orm/postgresql';
import sql from 'sql-template-tag';

import type { SqlClient } from '../../db/sql.js';
import { paginate, type Connection, type PageArgs } from '../../shared/connection.js';
import type { Logger } from '../../shared/logger.js';
import { and, readModel } from '../../shared/read-model.js';
import type { Scope, Viewer } from '../../shared/scope.js';
import { isHumanAdmin } from '../../shared/viewer.js';
import { AuditChain, type ChainVerification } from './audit-chain.js';
import { AuditCheckpoints } from './audit-checkpoints.js';
import { AuditEvent } from './audit-event.entity.js';
import type { AuditEventWhere } from './audit.inputs.js';

export interface AuditEntry {
  action: string;
  entityType: string;
  entityId?: string | null;
  before?: unknown;
  after?: unknown;
  outcome?: 'SUCCESS' | 'FAILURE';
  /** Overrides the viewer (e.g. a login before anyone is signed in, or a job). */
  actorId?: string | null;
  actorLabel?: string;
}

export interface AuditDeps {
  db: SqlClient;
  logger: Logger;
  config: { AUDIT_SEAL_DELAY_MS: number; AUDIT_CHECKPOINT_KEY_FILE: string; AUDIT_CHECKPOINT_FILE: string };
}

/**
 * The audit hook: every data-changing service method records what it did through
 * here, with the transaction's EntityManager, so the record commits or rolls back
 * with the change itself. AI decisions (automatic blocks, overrides, promotions,
 * quarantines) are recorded here like any admin change.
 *
 * Recording never waits for the hash chain: the event is inserted unlinked, and the
 * commit of its transaction pokes the sealer (./audit-chain.ts), which links it moments
 * later, one sealer at a time across instances.
 */
export class AuditService {
  readonly chain: AuditChain;
  /** Signed checkpoints of the chain's head, kept outside the database. */
  readonly checkpoints: AuditCheckpoints;
  /** Event managers (one per transaction) whose commit already pokes the sealer. */
  private readonly hooked = new WeakSet<object>();

  constructor(private readonly deps: AuditDeps) {
    this.chain = new AuditChain(deps.db, deps.logger, { delayMs: deps.config.AUDIT_SEAL_DELAY_MS });
    this.checkpoints = new AuditCheckpoints(deps.config.AUDIT_CHECKPOINT_KEY_FILE, deps.config.AUDIT_CHECKPOINT_FILE);
  }

  record(tx: Scope, entry: AuditEntry): AuditEvent {
    const v = tx.viewer;
    const event = tx.em.create(AuditEvent, {
      actorId: entry.actorId !== undefined ? entry.actorId : (v?.userId ?? null),
      actorLabel: entry.actorLabel ?? v?.serviceActor ?? (v ? `user:${v.userId}` : 'anonymous'),
      action: entry.action,
      entityType: entry.entityType,
      entityId: entry.entityId ?? null,
      before: entry.before ?? null,
      after: entry.after ?? null,
      outcome: entry.outcome ?? 'SUCCESS',
      requestId: tx.meta.requestId,
      ip: tx.meta.ip,
      userAgent: tx.meta.userAgent,
    });
    tx.em.persist(event);
    this.sealAfterCommit(tx.em);
    return event;
  }

  /**
   * Pokes the sealer when the transaction commits. MikroORM gives every transaction
   * (em.transactional, hence inTransaction) an event manager of its own, so the
   * subscriber lives and dies with it. An event recorded outside a transaction is
   * linked by the `audit.seal` job instead.
   */
  private sealAfterCommit(em: EntityManager): void {
    if (!em.isInTransaction()) return;
    const events = em.getEventManager();
    if (this.hooked.has(events)) return;
    this.hooked.add(events);
    events.registerSubscriber({ afterTransactionCommit: () => this.chain.poke() });
  }

  /** Seals what is committed, then checks the whole chain (admins; see AuditChain.verify). */
  verify(): Promise<ChainVerification> {
    return this.chain.verify(this.checkpoints.read());
  }

  /** Seals, then signs the head into the checkpoint file (the audit.checkpoint job); answers the new checkpoint's link, or null. */
  async checkpoint(): Promise<number | null> {
    await this.chain.seal();
    const head = await this.deps.db.one<{ seq: string; hash: string }>(
      sql`SELECT seq::text AS seq, hash FROM audit_chain_head WHERE id = 1`,
    );
    return head ? (this.checkpoints.write({ seq: Number(head.seq), hash: head.hash })?.seq ?? null) : null;
  }

  /** Admins see every event; everyone else the events of their own actions. Newest first. */
  list(
    viewer: Viewer,
    fields: Iterable<string>,
    where: AuditEventWhere,
    page: PageArgs,
  ): Promise<Connection<Record<string, unknown>>> {
    const actionPrefix = where.actionPrefix ? `${where.actionPrefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%` : null;
    return paginate(
      this.deps.db,
      {
        model: readModel(AuditEvent),
        fields,
        where: and([
          isHumanAdmin(viewer) ? null : sql`t.actor_id = ${viewer.userId}::uuid`,
          where.actorId ? sql`t.actor_id = ${where.actorId}::uuid` : null,
          where.actorLabel ? sql`t.actor_label = ${where.actorLabel}` : null,
          where.entityType ? sql`t.entity_type = ${where.entityType}` : null,
          where.entityId ? sql`t.entity_id = ${where.entityId}` : null,
          where.action ? sql`t.action = ${where.action}` : null,
          actionPrefix ? sql`t.action LIKE ${actionPrefix}` : null,
          where.outcome ? sql`t.outcome = ${where.outcome}` : null,
          where.requestId ? sql`t.request_id = ${where.requestId}` : null,
          where.from ? sql`t.created_at >= ${where.from}::timestamptz` : null,
          where.to ? sql`t.created_at < ${where.to}::timestamptz` : null,
        ]),
        sort: { property: 'id', direction: 'DESC', type: 'uuid' },
      },
      page,
    );
  }
}
