import sql, { raw, type Sql } from 'sql-template-tag';

import type { SqlClient } from '../../db/sql.js';
import type { EventScope } from '../../events/subscription.js';
import { ForbiddenError, NotFoundError } from '../../shared/errors.js';
import type { Viewer } from '../../shared/scope.js';
import { isHumanAdmin } from '../../shared/viewer.js';
import { ProjectRole } from './project-member.entity.js';

const RANK: Record<ProjectRole, number> = {
  [ProjectRole.VIEWER]: 1,
  [ProjectRole.CONTRIBUTOR]: 2,
  [ProjectRole.MAINTAINER]: 3,
  [ProjectRole.OWNER]: 4,
};

export const atLeast = (role: ProjectRole | null | undefined, min: ProjectRole): boolean =>
  !!role && RANK[role] >= RANK[min];

/**
 * Who may see and do what in a project: the one place these rules live.
 *
 * - ADMIN: everything, in every project (acts as OWNER), deleted ones included.
 * - A member reads the project and its work; CONTRIBUTOR+ creates and changes work;
 *   MAINTAINER+ manages the project, its members and decides approvals; OWNER alone
 *   deletes the project, transfers ownership and appoints maintainers.
 * - OBSERVERs read what they are members of (the auth checker already refuses their mutations).
 * - A service token (an agent, a runtime) acts for the system: it may do what the
 *   operations that accept SERVICE allow, in any project that is not deleted.
 * - An API token limited to some projects (its `projectIds`) reaches only those.
 * - Anyone else: the project does not exist for them (NOT_FOUND, never FORBIDDEN, so ids leak nothing).
 */
export class ProjectPolicy {
  constructor(private readonly db: SqlClient) {}

  /**
   * The viewer's effective role in a project, or null when it may not see it. With an
   * event's scope (subscriptions), the project's whole membership is read once per event
   * and every subscriber is answered from it.
   */
  async roleOf(viewer: Viewer, projectId: string, scope?: EventScope): Promise<ProjectRole | null> {
    if (viewer.projectIds?.length && !viewer.projectIds.includes(projectId)) return null;
    let row: { status: string; role: ProjectRole | null } | null | undefined;
    if (scope) {
      const p = await scope.once(`project:${projectId}`, () => this.membership(projectId));
      row = p && { status: p.status, role: p.roles.get(viewer.userId) ?? null };
    } else {
      row = await this.db.one<{ status: string; role: ProjectRole | null }>(sql`
        SELECT p.status, m.role FROM projects p
          LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = ${viewer.userId}::uuid
         WHERE p.id = ${projectId}::uuid`);
    }
    if (!row) return null;
    if (isHumanAdmin(viewer)) return ProjectRole.OWNER;
    if (row.status === 'DELETED') return null;
    if (viewer.serviceActor) return ProjectRole.MAINTAINER;
    return row.role;
  }

  /** A project's status and every member's role, or null if there is no such project. */
  private async membership(projectId: string): Promise<{ status: string; roles: Map<string, ProjectRole> } | null> {
    const rows = await this.db.query<{ status: string; user_id: string | null; role: ProjectRole | null }>(sql`
      SELECT p.status, m.user_id, m.role FROM projects p
        LEFT JOIN project_members m ON m.project_id = p.id
       WHERE p.id = ${projectId}::uuid`);
    if (!rows.length) return null;
    return { status: rows[0]!.status, roles: new Map(rows.filter((r) => r.user_id).map((r) => [r.user_id!, r.role!])) };
  }

  /** The viewer's role, which must be at least `min`; NOT_FOUND if it cannot see the project at all. */
  async require(viewer: Viewer, projectId: string, min: ProjectRole): Promise<ProjectRole> {
    const role = await this.roleOf(viewer, projectId);
    if (!role) throw new NotFoundError('Project', projectId);
    if (!atLeast(role, min))
      throw new ForbiddenError(`This needs the ${min} role or higher in the project (you are ${role})`);
    return role;
  }

  canRead = async (viewer: Viewer, projectId: string, scope?: EventScope): Promise<boolean> =>
    (await this.roleOf(viewer, projectId, scope)) !== null;

  /** May decide the project's approvals: admins, OWNER and MAINTAINER. */
  canDecide = async (viewer: Viewer, projectId: string, scope?: EventScope): Promise<boolean> =>
    !viewer.serviceActor && atLeast(await this.roleOf(viewer, projectId, scope), ProjectRole.MAINTAINER);

  /**
   * SQL condition: the project whose id is `column` is visible to the viewer. For lists,
   * so that visibility is part of the query, never a filter applied to loaded rows.
   */
  visible(viewer: Viewer, column: string): Sql {
    const col = raw(column);
    if (viewer.projectIds?.length)
      return sql`${col} = ANY(${viewer.projectIds}::uuid[]) AND ${this.visible({ ...viewer, projectIds: undefined }, column)}`;
    if (isHumanAdmin(viewer)) return sql`TRUE`;
    if (viewer.serviceActor)
      return sql`EXISTS (SELECT 1 FROM projects vp WHERE vp.id = ${col} AND vp.status <> 'DELETED')`;
    return sql`EXISTS (SELECT 1 FROM project_members vm JOIN projects vp ON vp.id = vm.project_id
                       WHERE vm.project_id = ${col} AND vm.user_id = ${viewer.userId}::uuid AND vp.status <> 'DELETED')`;
  }

  /** A project's active OWNER and MAINTAINERs: who runs it (told of its cost alerts, decides its approvals). */
  async managers(projectId: string): Promise<string[]> {
    const rows = await this.db.query<{ id: string }>(sql`
      SELECT m.user_id AS id FROM project_members m JOIN users u ON u.id = m.user_id
       WHERE m.project_id = ${projectId}::uuid AND m.role IN ('OWNER', 'MAINTAINER') AND u.status = 'ACTIVE' AND NOT u.is_blocked`);
    return rows.map((r) => r.id);
  }

  /** Users who may decide a project's approvals (its managers, and every admin). */
  async deciders(projectId: string): Promise<string[]> {
    const admins = await this.db.query<{ id: string }>(
      sql`SELECT id FROM users WHERE role = 'ADMIN' AND status = 'ACTIVE' AND NOT is_blocked`,
    );
    return [...new Set([...(await this.managers(projectId)), ...admins.map((r) => r.id)])];
  }
}
