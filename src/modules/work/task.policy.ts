import sql, { raw, type Sql } from 'sql-template-tag';

import type { SqlClient } from '../../db/sql.js';
import type { EventScope } from '../../events/subscription.js';
import { ForbiddenError, NotFoundError } from '../../shared/errors.js';
import type { Viewer } from '../../shared/scope.js';
import { isHumanAdmin } from '../../shared/viewer.js';
import { atLeast, type ProjectPolicy } from '../projects/index.js';
import { ProjectRole } from '../projects/project-member.entity.js';

export interface TaskAccess {
  taskId: string;
  projectId: string | null;
  /** The viewer's effective role on the task: its project role, or OWNER of a personal task it created. */
  role: ProjectRole;
  /** The intents prompt governance allows on the task (none: ungoverned). */
  allowedIntents: string[];
}

/** What access is decided from: the task's row and whether the viewer is one of its active assignees. */
interface AccessRow {
  project_id: string | null;
  created_by_id: string;
  allowed_intents: string[];
  assigned: boolean;
}

/** A task's row as all of an event's subscribers share it: its active assignees listed. */
type SharedTaskRow = Omit<AccessRow, 'assigned'> & { assignees: string[] };

/**
 * The shared row answered for one subscriber: a literal of four fields, not a spread of
 * the row (thousands of subscribers per event).
 */
function forViewer(r: SharedTaskRow | undefined, viewer: Viewer): AccessRow | undefined {
  return (
    r && {
      project_id: r.project_id,
      created_by_id: r.created_by_id,
      allowed_intents: r.allowed_intents,
      assigned: r.assignees.includes(viewer.userId),
    }
  );
}

/**
 * Access to a task follows its project (see ProjectPolicy). A task without a project is
 * personal: its creator owns it, its assignees contribute to it, admins see it.
 * A deleted task (soft-deleted, `deleted_at`) is seen by no one here: admins reach it
 * only through TaskService.deleted/restore.
 */
export class TaskPolicy {
  constructor(
    private readonly db: SqlClient,
    private readonly projects: ProjectPolicy,
  ) {}

  /**
   * The viewer's access to a task, or null. With an event's scope (subscriptions), the
   * task and its project's membership are read once per event for every subscriber.
   */
  async access(viewer: Viewer, taskId: string, scope?: EventScope): Promise<TaskAccess | null> {
    const row = scope ? forViewer(await this.sharedTask(taskId, scope), viewer) : await this.ownRow(viewer, taskId);
    if (!row) return null;
    const allowedIntents = row.allowed_intents ?? [];
    // A token limited to some projects reaches no personal task.
    if (!row.project_id && viewer.projectIds?.length) return null;
    if (row.project_id) {
      const role = await this.projects.roleOf(viewer, row.project_id, scope);
      return role ? { taskId, projectId: row.project_id, role, allowedIntents } : null;
    }
    if (isHumanAdmin(viewer) || row.created_by_id === viewer.userId)
      return { taskId, projectId: null, role: ProjectRole.OWNER, allowedIntents };
    if (row.assigned) return { taskId, projectId: null, role: ProjectRole.CONTRIBUTOR, allowedIntents };
    return null;
  }

  /**
   * The task's row, read once per event for all its subscribers. Not an async function: each
   * subscriber awaits the one shared promise instead of a promise of its own.
   */
  private sharedTask(taskId: string, scope: EventScope) {
    return scope.once(`task:${taskId}`, () =>
      this.db.one<SharedTaskRow>(sql`
        SELECT t.project_id, t.created_by_id, t.allowed_intents,
               ARRAY(SELECT a.user_id FROM task_assignees a WHERE a.task_id = t.id AND a.active) AS assignees
          FROM tasks t WHERE t.id = ${taskId}::uuid AND t.deleted_at IS NULL`),
    );
  }

  /** The task's row for one viewer, outside any event: whether they are assigned asked of PostgreSQL. */
  private ownRow(viewer: Viewer, taskId: string): Promise<AccessRow | undefined> {
    return this.db.one<AccessRow>(sql`
      SELECT t.project_id, t.created_by_id, t.allowed_intents,
             EXISTS (SELECT 1 FROM task_assignees a WHERE a.task_id = t.id AND a.user_id = ${viewer.userId}::uuid AND a.active) AS assigned
        FROM tasks t WHERE t.id = ${taskId}::uuid AND t.deleted_at IS NULL`);
  }

  /** The viewer's access, at least `min`; NOT_FOUND when it cannot see the task. */
  async require(viewer: Viewer, taskId: string, min: ProjectRole): Promise<TaskAccess> {
    const a = await this.access(viewer, taskId);
    if (!a) throw new NotFoundError('Task', taskId);
    if (!atLeast(a.role, min))
      throw new ForbiddenError(`This needs the ${min} role or higher on the task (you are ${a.role})`);
    return a;
  }

  /** SQL condition on a tasks row aliased `alias`: visible to the viewer. */
  visible(viewer: Viewer, alias = 't'): Sql {
    const t = raw(alias);
    if (viewer.projectIds?.length)
      return sql`${t}.deleted_at IS NULL AND ${t}.project_id IS NOT NULL AND ${this.projects.visible(viewer, `${alias}.project_id`)}`;
    if (isHumanAdmin(viewer)) return sql`${t}.deleted_at IS NULL`;
    return sql`${t}.deleted_at IS NULL AND (CASE WHEN ${t}.project_id IS NOT NULL THEN ${this.projects.visible(viewer, `${alias}.project_id`)}
                ELSE (${t}.created_by_id = ${viewer.userId}::uuid
                      OR EXISTS (SELECT 1 FROM task_assignees va WHERE va.task_id = ${t}.id AND va.user_id = ${viewer.userId}::uuid AND va.active)) END)`;
  }
}
