import sql from 'sql-template-tag';

import type { SqlClient } from '../../db/sql.js';
import type { EventBus } from '../../events/bus.js';
import { NEWEST_FIRST, paginate, type Connection, type PageArgs } from '../../shared/connection.js';
import { BadInputError, ForbiddenError, NotFoundError, requireUuid } from '../../shared/errors.js';
import { readModel } from '../../shared/read-model.js';
import { inTransaction, type Scope, type Viewer } from '../../shared/scope.js';
import { isHumanAdmin } from '../../shared/viewer.js';
import type { AuditService } from '../audit/index.js';
import { formatMicros, toMicros } from '../billing/index.js';
import { ApiToken } from '../identity/api-token.entity.js';
import type { IdentityServices, Role } from '../identity/index.js';
import type { ProjectService } from '../projects/index.js';
import { ProjectRole } from '../projects/project-member.entity.js';
import type { TaskPolicy } from '../work/index.js';
import { VIRTUAL_KEY_CHANGED, type VirtualKeyChanged } from './virtual-key.events.js';

/** A virtual key as GraphQL shows it (never its secret, which only its creation shows). */
export interface VirtualKeyView {
  id: string;
  userId: string;
  name: string;
  prefix: string;
  allowedModels: string[] | null;
  taskId: string | null;
  projectId: string | null;
  dailyCostLimitUsd: string | null;
  monthlyCostLimitUsd: string | null;
  dailyTokenLimit: number | null;
  requestsPerMinute: number | null;
  expiresAt: Date | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
  createdAt: Date;
}

/** What an update may change; `undefined`: unchanged, `null`: cleared. */
export interface VirtualKeyChanges {
  name?: string;
  allowedModels?: string[] | null;
  taskId?: string | null;
  projectId?: string | null;
  dailyCostLimitUsd?: string | null;
  monthlyCostLimitUsd?: string | null;
  dailyTokenLimit?: number | null;
  requestsPerMinute?: number | null;
  expiresAt?: Date | null;
}

export interface VirtualKeyWhere {
  /** Whose keys (admins only for another user's); default: the viewer's. */
  userId?: string | null;
  /** Every user's keys (admins only). */
  allUsers?: boolean | null;
  includeRevoked?: boolean | null;
}

interface Deps {
  db: SqlClient;
  bus: Pick<EventBus, 'publish' | 'inForce'>;
  audit: AuditService;
  credentials: Pick<IdentityServices['credentials'], 'revokeApiToken'>;
  taskPolicy: Pick<TaskPolicy, 'require'>;
  projects: Pick<ProjectService, 'requireWritable'>;
}

const FIELDS = [
  'user',
  'name',
  'prefix',
  'allowedModels',
  'boundTaskId',
  'boundProjectId',
  'dailyCostLimitUsd',
  'monthlyCostLimitUsd',
  'dailyTokenLimit',
  'requestsPerMinute',
  'expiresAt',
  'revokedAt',
  'lastUsedAt',
  'createdAt',
  'serviceActor',
];

const money = (v: string | null | undefined, field: string) => (v == null ? null : formatMicros(toMicros(v, field)));
const models = (list: string[] | null | undefined) => {
  const clean = [...new Set((list ?? []).map((m) => m.trim()).filter(Boolean))];
  return clean.length ? clean : null;
};
/** A text[] literal for a parameter (quoted, so names with commas or braces stay one element). */
export const textArray = (list: string[] | null) =>
  list ? `{${list.map((m) => `"${m.replace(/["\\]/g, '\\$&')}"`).join(',')}}` : null;

const iso = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
const date = (v: unknown) => (v == null ? null : v instanceof Date ? v : new Date(v as string));

function view(r: Record<string, unknown>): VirtualKeyView {
  return {
    id: r.id as string,
    userId: r.user as string,
    name: r.name as string,
    prefix: r.prefix as string,
    allowedModels: (r.allowedModels as string[] | null)?.length ? (r.allowedModels as string[]) : null,
    taskId: (r.boundTaskId as string | null) ?? null,
    projectId: (r.boundProjectId as string | null) ?? null,
    dailyCostLimitUsd: money(r.dailyCostLimitUsd as string | null, 'dailyCostLimitUsd'),
    monthlyCostLimitUsd: money(r.monthlyCostLimitUsd as string | null, 'monthlyCostLimitUsd'),
    dailyTokenLimit: r.dailyTokenLimit == null ? null : Number(r.dailyTokenLimit),
    requestsPerMinute: (r.requestsPerMinute as number | null) ?? null,
    expiresAt: date(r.expiresAt),
    revokedAt: date(r.revokedAt),
    lastUsedAt: date(r.lastUsedAt),
    createdAt: date(r.createdAt)!,
  };
}

/**
 * Virtual keys after their creation: listed (the secret never again), changed and
 * revoked by their owner or an admin. A change takes effect on the very next call on
 * every instance: the gateway caches an authenticated key with its rules and forgets it
 * when the bus says the key changed (VIRTUAL_KEY_CHANGED) or was revoked
 * (CREDENTIALS_REVOKED, published by the API token revocation this reuses).
 */
export class VirtualKeyService {
  constructor(private readonly deps: Deps) {}

  /**
   * The task and project a key may be bound to, checked for the user the key acts as:
   * they must contribute to the task (and to the project); a task names its project, and
   * a task outside the project given is refused.
   */
  async binding(
    owner: Viewer,
    taskId: string | null,
    projectId: string | null,
  ): Promise<{ taskId: string | null; projectId: string | null }> {
    const task = taskId ? requireUuid(taskId, 'taskId') : null;
    let project = projectId ? requireUuid(projectId, 'projectId') : null;
    if (task) {
      const t = await this.deps.taskPolicy.require(owner, task, ProjectRole.CONTRIBUTOR);
      if (project && t.projectId !== project)
        throw BadInputError.field('taskId', "the task must belong to the key's project");
      project ??= t.projectId;
    }
    if (project) await this.deps.projects.requireWritable(owner, project, ProjectRole.CONTRIBUTOR);
    return { taskId: task, projectId: project };
  }

  list(viewer: Viewer, where: VirtualKeyWhere, page: PageArgs): Promise<Connection<VirtualKeyView>> {
    const admin = isHumanAdmin(viewer);
    const userId = where.userId ? requireUuid(where.userId, 'userId') : null;
    if ((where.allUsers || (userId && userId !== viewer.userId)) && !admin)
      throw new ForbiddenError("Only an administrator lists other users' keys");
    const owner = where.allUsers ? sql`TRUE` : sql`t.user_id = ${userId ?? viewer.userId}::uuid`;
    const live = where.includeRevoked ? sql`` : sql` AND t.revoked_at IS NULL`;
    return paginate<Record<string, unknown>>(
      this.deps.db,
      {
        model: readModel(ApiToken),
        fields: FIELDS,
        // Service tokens act for the system, not a person: they are managed as service tokens.
        where: sql`${owner} AND t.service_actor IS NULL${live}`,
        sort: NEWEST_FIRST,
      },
      page,
    ).then((c) => ({
      edges: c.edges.map((e) => ({ cursor: e.cursor, node: view(e.node) })),
      pageInfo: c.pageInfo,
      get totalCount() {
        return c.totalCount;
      },
    }));
  }

  private async load(em: Scope['em'], viewer: Viewer, id: string, lock = false) {
    const [row] = await em.execute<Record<string, unknown>[]>(
      // Raw rows carry timestamps as PostgreSQL's text: ISO 8601 is what Date reads back.
      `SELECT t.id, t.user_id AS "user", u.role AS "ownerRole", t.name, t.prefix, t.allowed_models AS "allowedModels",
              t.bound_task_id AS "boundTaskId", t.bound_project_id AS "boundProjectId",
              t.daily_cost_limit_usd::text AS "dailyCostLimitUsd", t.monthly_cost_limit_usd::text AS "monthlyCostLimitUsd",
              t.daily_token_limit AS "dailyTokenLimit", t.requests_per_minute AS "requestsPerMinute",
              ${iso('t.expires_at')} AS "expiresAt", ${iso('t.revoked_at')} AS "revokedAt", ${iso('t.last_used_at')} AS "lastUsedAt",
              ${iso('t.created_at')} AS "createdAt", t.service_actor AS "serviceActor"
         FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ?${lock ? ' FOR UPDATE OF t' : ''}`,
      [id],
    );
    // Someone else's key is as absent as a key that does not exist.
    if (!row || row.serviceActor || (row.user !== viewer.userId && !isHumanAdmin(viewer)))
      throw new NotFoundError('VirtualKey', id);
    return row;
  }

  async get(scope: Scope, viewer: Viewer, id: string): Promise<VirtualKeyView> {
    return view(await this.load(scope.em, viewer, requireUuid(id)));
  }

  /** Changes a key's rules (validated as at creation, for the user the key acts as), audited; the next call obeys them. */
  async update(scope: Scope, viewer: Viewer, id: string, c: VirtualKeyChanges): Promise<VirtualKeyView> {
    const keyId = requireUuid(id);
    if (c.name !== undefined && !c.name?.trim()) throw BadInputError.field('name', 'must not be empty');
    if (c.expiresAt && c.expiresAt <= new Date()) throw BadInputError.field('expiresAt', 'must be in the future');
    // Answers once this instance's gateway has dropped the cached key (EventBus.inForce).
    const heard = (p: unknown) => (p as VirtualKeyChanged).apiTokenId === keyId;
    return this.deps.bus.inForce(VIRTUAL_KEY_CHANGED, heard, () =>
      inTransaction(scope, async (tx) => {
        const row = await this.load(tx.em, viewer, keyId, true);
        if (row.revokedAt) throw BadInputError.field('id', 'the key is revoked');
        const before = view(row);
        const next: VirtualKeyView = {
          ...before,
          ...(c.name !== undefined ? { name: c.name.trim() } : {}),
          ...(c.allowedModels !== undefined ? { allowedModels: models(c.allowedModels) } : {}),
          ...(c.dailyCostLimitUsd !== undefined
            ? { dailyCostLimitUsd: money(c.dailyCostLimitUsd, 'dailyCostLimitUsd') }
            : {}),
          ...(c.monthlyCostLimitUsd !== undefined
            ? { monthlyCostLimitUsd: money(c.monthlyCostLimitUsd, 'monthlyCostLimitUsd') }
            : {}),
          ...(c.dailyTokenLimit !== undefined ? { dailyTokenLimit: c.dailyTokenLimit } : {}),
          ...(c.requestsPerMinute !== undefined ? { requestsPerMinute: c.requestsPerMinute } : {}),
          ...(c.expiresAt !== undefined ? { expiresAt: c.expiresAt } : {}),
        };
        if (c.taskId !== undefined || c.projectId !== undefined) {
          // Checked for the key's user: its calls act as them, whoever edits the key.
          const owner: Viewer =
            row.user === viewer.userId ? viewer : { userId: row.user as string, role: row.ownerRole as Role };
          const taskId = c.taskId !== undefined ? c.taskId : before.taskId;
          // A new task names its project; keeping the old project beside it would be refused when they differ.
          const projectId = c.projectId !== undefined ? c.projectId : c.taskId ? null : before.projectId;
          Object.assign(next, await this.binding(owner, taskId, projectId));
        }
        await tx.em.execute(
          `UPDATE api_tokens SET name = ?, allowed_models = ?, bound_task_id = ?, bound_project_id = ?,
                daily_cost_limit_usd = ?::numeric, monthly_cost_limit_usd = ?::numeric, daily_token_limit = ?,
                requests_per_minute = ?, expires_at = ? WHERE id = ?`,
          [
            next.name,
            textArray(next.allowedModels),
            next.taskId,
            next.projectId,
            next.dailyCostLimitUsd,
            next.monthlyCostLimitUsd,
            next.dailyTokenLimit,
            next.requestsPerMinute,
            next.expiresAt,
            keyId,
          ],
        );
        const { id: _a, userId: _b, prefix: _c, createdAt: _d, lastUsedAt: _e, revokedAt: _f, ...rules } = before;
        const { id: _g, userId: _h, prefix: _i, createdAt: _j, lastUsedAt: _k, revokedAt: _l, ...after } = next;
        this.deps.audit.record(tx, {
          action: 'apiToken.virtualKeyUpdate',
          entityType: 'ApiToken',
          entityId: keyId,
          before: rules,
          after,
        });
        await this.deps.bus.publish(tx.em, VIRTUAL_KEY_CHANGED, {
          apiTokenId: keyId,
          userId: before.userId,
        } satisfies VirtualKeyChanged);
        return next;
      }),
    );
  }

  /** API token revocation itself (audited, published, sockets closed); the key as it is now. */
  async revoke(scope: Scope, viewer: Viewer, id: string): Promise<VirtualKeyView> {
    const keyId = requireUuid(id);
    await this.load(scope.em, viewer, keyId);
    // In force on this instance once it answers, as every API token revocation.
    await this.deps.credentials.revokeApiToken(scope, viewer, keyId);
    return view(await this.load(scope.em.fork() as Scope['em'], viewer, keyId));
  }
}
