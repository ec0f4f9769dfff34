import sql from 'sql-template-tag';

import type { SqlClient } from '../../db/sql.js';
import type { EventBus } from '../../events/bus.js';
import { BY_ID, paginate, type Connection, type PageArgs } from '../../shared/connection.js';
import { AppError, BadInputError, NotFoundError, requireUuid } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { readModel } from '../../shared/read-model.js';
import { inTransaction, type Scope } from '../../shared/scope.js';
import type { AuditService } from '../audit/index.js';
import type { Role, Tier } from '../identity/index.js';
import { ModelAccessRule } from './model-access-rule.entity.js';
import { MODEL_ACCESS_CHANGED, type ModelAccessChanged } from './model-access.events.js';

/** Who is asking for a model: their role and tier, and the project the call is attributed to. */
export interface ModelCaller {
  role: Role | `${Role}`;
  tier?: Tier | `${Tier}` | null;
  projectId?: string | null;
}

export interface ModelAccessRuleInput {
  id?: string | null;
  model: string;
  tiers?: (Tier | `${Tier}`)[] | null;
  roles?: (Role | `${Role}`)[] | null;
  projectId?: string | null;
  note?: string | null;
}

/** The organisation's rule set stays small: it is held whole in every instance's memory. */
export const MAX_RULES = 1000;

export class ModelNotAllowedError extends AppError {
  constructor(model: string) {
    super('FORBIDDEN', `You may not use the model '${model}' (the model access rules do not admit you)`, {
      reason: 'model_not_allowed',
      model,
    });
  }
}

interface Compiled {
  matches: (model: string) => boolean;
  tiers: ReadonlySet<string>;
  roles: ReadonlySet<string>;
  projectId: string | null;
}

/** `*` stands for any text; everything else is literal (model names hold dots, slashes, colons). */
export function modelPattern(pattern: string): (model: string) => boolean {
  if (!pattern.includes('*')) return (m) => m === pattern;
  const re = new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\/]/g, '\\$&'))
      .join('.*')}$`,
  );
  return (m) => re.test(m);
}

const RULE_COLUMNS = sql`id, model, tiers, roles, project_id AS "projectId"`;

/**
 * Who may use which models. Rules are admin-managed; the semantics:
 * - a model no rule names is open (to everyone who can reach a provider of it);
 * - a model one or more rules name is usable only by a caller matching at least one;
 * - a caller matches a rule when it meets every condition the rule gives: its tier is
 *   among `tiers`, its role among `roles`, the call is attributed to `projectId`
 *   (an empty list or null sets no condition; a rule sets at least one).
 *
 * Checked with no SQL per call: every instance holds the rules in memory, loaded at the
 * first check and again whenever one changes (MODEL_ACCESS_CHANGED on the bus, which every
 * instance hears; and after the bus reconnects, as events may have been missed meanwhile).
 * The one place this rule lives: the gateway's routes and `sendMessage` both ask it.
 */
export class ModelAccess {
  private rules: Compiled[] | null = null;
  private loading: Promise<Compiled[]> | null = null;
  private generation = 0;

  constructor(
    private readonly deps: {
      db: SqlClient;
      bus: Pick<EventBus, 'on' | 'onReconnect' | 'publish'>;
      audit: AuditService;
      logger: Logger;
    },
  ) {
    const refresh = () =>
      void this.reload().catch((err) =>
        this.deps.logger.error({ module: 'modelAccess', err }, 'model access rules could not be reloaded'),
      );
    deps.bus.on(MODEL_ACCESS_CHANGED, refresh);
    deps.bus.onReconnect(refresh);
  }

  private reload(): Promise<Compiled[]> {
    const generation = ++this.generation;
    const load = this.deps.db
      .query<{ model: string; tiers: string[]; roles: string[]; projectId: string | null }>(
        sql`SELECT ${RULE_COLUMNS} FROM model_access_rules`,
      )
      .then((rows) => {
        const compiled = rows.map((r) => ({
          matches: modelPattern(r.model),
          tiers: new Set(r.tiers),
          roles: new Set(r.roles),
          projectId: r.projectId,
        }));
        if (generation === this.generation) {
          this.rules = compiled;
          return compiled;
        }
        // A newer load started meanwhile: its rules are at least as fresh, and an older load never overwrites them.
        return this.loading ?? compiled;
      });
    this.loading = load;
    load.catch(() => {
      if (this.loading === load) this.loading = null;
    });
    return load;
  }

  private current(): Compiled[] | Promise<Compiled[]> {
    return this.rules ?? this.loading ?? this.reload();
  }

  private admits(rules: readonly Compiled[], model: string, c: ModelCaller): boolean {
    let named = false;
    for (const r of rules) {
      if (!r.matches(model)) continue;
      named = true;
      if (
        (!r.tiers.size || (!!c.tier && r.tiers.has(c.tier))) &&
        (!r.roles.size || r.roles.has(c.role)) &&
        (!r.projectId || r.projectId === c.projectId)
      )
        return true;
    }
    return !named;
  }

  /** Whether any rule exists (with none, every model is open and nothing needs checking). */
  async restricts(): Promise<boolean> {
    return (await this.current()).length > 0;
  }

  async allowed(model: string, caller: ModelCaller): Promise<boolean> {
    return this.admits(await this.current(), model, caller);
  }

  /** FORBIDDEN (reason model_not_allowed) unless the caller may use `model` (a provider's model name). */
  async require(model: string, caller: ModelCaller): Promise<void> {
    if (!this.admits(await this.current(), model, caller)) throw new ModelNotAllowedError(model);
  }

  /** The items whose model the caller may use. */
  async filter<T>(items: readonly T[], modelOf: (item: T) => string, caller: ModelCaller): Promise<T[]> {
    const rules = await this.current();
    return rules.length ? items.filter((i) => this.admits(rules, modelOf(i), caller)) : [...items];
  }

  // ---------- administration ----------

  list(fields: Iterable<string>, page: PageArgs, model?: string | null): Promise<Connection<Record<string, unknown>>> {
    return paginate(
      this.deps.db,
      {
        model: readModel(ModelAccessRule),
        fields,
        where: model?.trim() ? sql`t.model = ${model.trim()}` : sql`TRUE`,
        sort: BY_ID,
      },
      page,
    );
  }

  /** Creates a rule, or replaces the one `id` names; audited; in force on this instance when it answers, on the others moments later. */
  async set(scope: Scope, input: ModelAccessRuleInput): Promise<ModelAccessRule> {
    const model = input.model.trim();
    if (!model || model.length > 256) throw BadInputError.field('model', 'must be 1 to 256 characters');
    const tiers = [...new Set(input.tiers ?? [])];
    const roles = [...new Set(input.roles ?? [])];
    const projectId = input.projectId ? requireUuid(input.projectId, 'projectId') : null;
    const note = input.note?.trim() || null;
    if (note && note.length > 500) throw BadInputError.field('note', 'must be at most 500 characters');
    if (!tiers.length && !roles.length && !projectId)
      throw BadInputError.field(
        'tiers',
        'a rule admits callers by tiers, roles or project: give at least one (a model no rule names is open to all)',
      );
    const rule = await inTransaction(scope, async (tx) => {
      if (projectId) {
        const [p] = await tx.em.execute(`SELECT 1 FROM projects WHERE id = ?`, [projectId]);
        if (!p) throw BadInputError.field('projectId', 'no such project');
      }
      let r: ModelAccessRule;
      let before: Record<string, unknown> | null = null;
      if (input.id) {
        const found = await tx.em.findOne(ModelAccessRule, requireUuid(input.id));
        if (!found) throw new NotFoundError('ModelAccessRule', input.id);
        r = found;
        before = {
          model: r.model,
          tiers: r.tiers,
          roles: r.roles,
          projectId: r.projectId ?? null,
          note: r.note ?? null,
        };
        Object.assign(r, { model, tiers, roles, projectId, note });
      } else {
        const [{ n }] = await tx.em.execute<{ n: number }[]>(`SELECT count(*)::int AS n FROM model_access_rules`);
        if (n >= MAX_RULES) throw BadInputError.field('model', `at most ${MAX_RULES} model access rules`);
        r = tx.em.create(ModelAccessRule, {
          model,
          tiers: tiers as Tier[],
          roles: roles as Role[],
          projectId,
          note,
          createdById: scope.viewer?.userId ?? null,
        });
      }
      await tx.em.flush();
      this.deps.audit.record(tx, {
        action: input.id ? 'modelAccess.update' : 'modelAccess.create',
        entityType: 'ModelAccessRule',
        entityId: r.id,
        before,
        after: { model, tiers, roles, projectId, note },
      });
      await this.deps.bus.publish(tx.em, MODEL_ACCESS_CHANGED, { ruleId: r.id } satisfies ModelAccessChanged);
      return r;
    });
    await this.reload();
    return rule;
  }

  /** Deletes a rule (audited); true when there was one. */
  async clear(scope: Scope, id: string): Promise<boolean> {
    const ruleId = requireUuid(id);
    const gone = await inTransaction(scope, async (tx) => {
      const r = await tx.em.findOne(ModelAccessRule, ruleId);
      if (!r) return false;
      const before = { model: r.model, tiers: r.tiers, roles: r.roles, projectId: r.projectId ?? null, note: r.note };
      tx.em.remove(r);
      await tx.em.flush();
      this.deps.audit.record(tx, {
        action: 'modelAccess.clear',
        entityType: 'ModelAccessRule',
        entityId: ruleId,
        before,
      });
      await this.deps.bus.publish(tx.em, MODEL_ACCESS_CHANGED, { ruleId } satisfies ModelAccessChanged);
      return true;
    });
    if (gone) await this.reload();
    return gone;
  }
}
