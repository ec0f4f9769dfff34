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
    const row = scope
      ? await scope
          .once(`task:${taskId}`, () =>
            this.db.one<{
              project_id: string | null;
              created_by_id: string;
              assignees: string[];
              allowed_intents: string[];
            }>(sql`
            SELECT t.project_id, t.created_by_id, t.allowed_intents,
                   ARRAY(SELECT a.user_id FROM task_assignees a WHERE a.task_id = t.id AND a.active) AS assignees
              FROM tasks t WHERE t.id = ${taskId}::uuid AND t.deleted_at IS NULL`),
          )
          .then((r) => r && { ...r, assigned: r.assignees.includes(viewer.userId) })
      : await this.db.one<{
          project_id: string | null;
          created_by_id: string;
          assigned: boolean;
          allowed_intents: string[];
        }>(sql`
          SELECT t.project_id, t.created_by_id, t.allowed_intents,
                 EXISTS (SELECT 1 FROM task_assignees a WHERE a.task_id = t.id AND a.user_id = ${viewer.userId}::uuid AND a.active) AS assigned
            FROM tasks t WHERE t.id = ${taskId}::uuid AND t.deleted_at IS NULL`);
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
