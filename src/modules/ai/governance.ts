import sql from 'sql-template-tag';
import { Field, ObjectType } from 'type-graphql';
import type { SqlClient } from '../../db/sql.js';
import type { EventBus } from '../../events/bus.js';
import { BadInputError, ForbiddenError, NotFoundError } from '../../shared/errors.js';
import { INTENTS, validateIntents } from '../../shared/intent-classifier.js';
import { inTransaction, type Scope, type Viewer } from '../../shared/scope.js';
import type { AuditService } from '../audit/index.js';

export { INTENTS, validateIntents };

/** Published when an admin changes the governance settings: every instance forgets what it read. */
export const GOVERNANCE_SETTINGS_CHANGED = 'ai.governanceSettingsChanged';

/** The organisation setting's key in organisation_settings. */
const REQUIRED_KEY = 'governance.required';
/** A safety net only: the bus event (or a reconnect) is what makes a change reach every instance. */
const MAX_AGE_MS = 30_000;

@ObjectType({ description: "The organisation's prompt-governance settings." })
export class GovernanceSettings {
  @Field({
    description: 'Every AI call must be bound to a task its caller is assigned to (calls without one are refused)',
  })
  required!: boolean;
  @Field(() => String, {
    description: 'ORGANISATION: set by an admin; DEFAULT: never set, so GOVERNANCE_REQUIRED (the environment) applies',
  })
  source!: 'ORGANISATION' | 'DEFAULT';
  @Field(() => Date, { nullable: true }) updatedAt!: Date | null;
  @Field(() => String, { nullable: true, description: 'The admin who set it last' }) updatedById!: string | null;
}

interface GovernanceDeps {
  db: SqlClient;
  bus: EventBus;
  audit: AuditService;
  config: { GOVERNANCE_REQUIRED: boolean };
}

/**
 * Prompt governance's binding rule, in one place (conversations use it; the AI gateway
 * uses it for X-Steward-Task): an AI call may be bound only to a task the caller is
 * actively assigned to, so nobody is judged against a colleague's task, nor picks a
 * task whose intents suit them. When governance is required (an organisation setting an
 * admin changes, GOVERNANCE_REQUIRED its default), a call without a task is refused:
 * refusing is explainable and cannot be dodged, where classifying against "all my
 * assigned tasks" would judge a prompt by whichever unrelated task allows the most (and
 * leave a user with no task ungoverned).
 *
 * The setting is read once per instance and kept until the bus says it changed (or the
 * bus reconnects, since events may have been lost meanwhile), so a call costs no query.
 */
export class GovernanceService {
  private cached: { settings: GovernanceSettings; at: number } | null = null;
  /** Bumped by every invalidation: a read that started before one must not be kept. */
  private generation = 0;

  constructor(private readonly deps: GovernanceDeps) {
    const forget = () => {
      this.cached = null;
      this.generation++;
    };
    deps.bus.on(GOVERNANCE_SETTINGS_CHANGED, forget);
    deps.bus.onReconnect(forget);
  }

  async settings(): Promise<GovernanceSettings> {
    if (this.cached && Date.now() - this.cached.at < MAX_AGE_MS) return this.cached.settings;
    const generation = this.generation;
    const row = await this.deps.db.one<{ value: unknown; updated_at: Date; updated_by: string | null }>(
      sql`SELECT value, updated_at, updated_by FROM organisation_settings WHERE key = ${REQUIRED_KEY}`,
    );
    const settings: GovernanceSettings = row
      ? { required: row.value === true, source: 'ORGANISATION', updatedAt: row.updated_at, updatedById: row.updated_by }
      : { required: this.deps.config.GOVERNANCE_REQUIRED, source: 'DEFAULT', updatedAt: null, updatedById: null };
    if (generation === this.generation) this.cached = { settings, at: Date.now() };
    return settings;
  }

  /** Admins: stored, audited, and told to every instance in the same transaction. */
  async update(scope: Scope, input: { required: boolean }): Promise<GovernanceSettings> {
    if (typeof input.required !== 'boolean') throw BadInputError.field('required', 'must be true or false');
    await inTransaction(scope, async (tx) => {
      // One change at a time, so the audit's "before" is the value really replaced.
      await tx.em.execute(`SELECT pg_advisory_xact_lock(hashtext('steward:organisation_settings'))`);
      const [before] = await tx.em.execute<{ value: unknown }[]>(
        `SELECT value FROM organisation_settings WHERE key = ?`,
        [REQUIRED_KEY],
      );
      await tx.em.execute(
        `INSERT INTO organisation_settings (key, value, updated_at, updated_by) VALUES (?, ?::jsonb, now(), ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
        [REQUIRED_KEY, JSON.stringify(input.required), tx.viewer?.userId ?? null],
      );
      this.deps.audit.record(tx, {
        action: 'organisation.setting',
        entityType: 'OrganisationSetting',
        entityId: REQUIRED_KEY,
        before: { value: before ? before.value : null, default: this.deps.config.GOVERNANCE_REQUIRED },
        after: { value: input.required },
      });
      await this.deps.bus.publish(tx.em, GOVERNANCE_SETTINGS_CHANGED, { key: REQUIRED_KEY });
    });
    this.cached = null;
    this.generation++;
    return this.settings();
  }

  /** The task's allowed intents (empty: anything goes), or FORBIDDEN / NOT_FOUND / BAD_USER_INPUT when the call may not be bound so. */
  async bind(
    viewer: Viewer,
    taskId: string | null | undefined,
  ): Promise<{ taskId: string | null; allowedIntents: string[] }> {
    if (!taskId) {
      if ((await this.settings()).required)
        throw BadInputError.field(
          'taskId',
          'prompt governance is required here: bind the call to a task you are assigned to',
        );
      return { taskId: null, allowedIntents: [] };
    }
    const row = await this.deps.db.one<{ allowed_intents: string[]; assigned: boolean }>(sql`
      SELECT t.allowed_intents,
             EXISTS (SELECT 1 FROM task_assignees a WHERE a.task_id = t.id AND a.user_id = ${viewer.userId}::uuid AND a.active) AS assigned
        FROM tasks t WHERE t.id = ${taskId}::uuid AND t.deleted_at IS NULL`);
    if (!row) throw new NotFoundError('Task', taskId);
    // A service actor (an agent) is bound by the task it was given, not by assignment.
    if (!row.assigned && !viewer.serviceActor)
      throw new ForbiddenError('An AI call may be bound only to a task you are assigned to');
    return { taskId, allowedIntents: row.allowed_intents ?? [] };
  }
}
