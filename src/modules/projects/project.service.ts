import { LockMode } from '@mikro-orm/core';
import sql, { type Sql } from 'sql-template-tag';

import type { SqlClient } from '../../db/sql.js';
import type { EventBus } from '../../events/bus.js';
import { conflictOnDuplicate } from '../../shared/conflict.js';
import { paginate, type Connection, type PageArgs } from '../../shared/connection.js';
import { BadInputError, ConflictError, ForbiddenError, NotFoundError, requireUuid } from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import { and, contains, readModel } from '../../shared/read-model.js';
import { inTransaction, type Scope, type Viewer } from '../../shared/scope.js';
import { isHumanAdmin } from '../../shared/viewer.js';
import type { AgentType } from '../ai/agent.entity.js';
import type { AuditService } from '../audit/index.js';
import { User, UserStatus } from '../identity/user.entity.js';
import { GitBranch } from './git-branch.entity.js';
import { ProjectFile } from './project-file.entity.js';
import { ProjectMember, ProjectRole } from './project-member.entity.js';
import { ProjectTemplate } from './project-template.entity.js';
import { Project, ProjectStatus } from './project.entity.js';
import { PROJECT_ACCESS_CHANGED, type ProjectAccessChanged } from './project.events.js';
import { atLeast, type ProjectPolicy } from './project.policy.js';

const snapshot = (p: Project) => ({
  name: p.name,
  description: p.description ?? null,
  status: p.status,
  settings: p.settings,
  gitRepoUrl: p.gitRepoUrl ?? null,
});

/**
 * Projects, their members, files and branches. Who may read and act is ProjectPolicy's,
 * by membership role; this service adds what a role alone does not say: an archived or
 * deleted project takes no writes (requireWritable), a project always has exactly one
 * OWNER, and only the owner hands out the MAINTAINER role, since maintainers approve and
 * govern the project's AI use.
 */
export class ProjectService {
  constructor(
    private readonly db: SqlClient,
    private readonly audit: AuditService,
    readonly policy: ProjectPolicy,
    private readonly bus: Pick<EventBus, 'publish'>,
  ) {}

  /** Inside the transaction of the change: heard once it commits. */
  private accessChanged(tx: Scope, projectId: string) {
    return this.bus.publish(tx.em, PROJECT_ACCESS_CHANGED, { projectId } satisfies ProjectAccessChanged);
  }

  list(
    viewer: Viewer,
    fields: Iterable<string>,
    where: { status?: ProjectStatus[] | null; search?: string | null },
    page: PageArgs,
  ): Promise<Connection<Record<string, unknown>>> {
    const statuses = where.status?.length ? where.status : [ProjectStatus.ACTIVE, ProjectStatus.ARCHIVED];
    return paginate(
      this.db,
      {
        model: readModel(Project),
        fields,
        where: and([
          this.policy.visible(viewer, 't.id'),
          sql`t.status = ANY(${statuses}::project_status[])`,
          where.search?.trim() ? contains('t.name', where.search.trim()) : null,
        ]),
        sort: { property: 'id', direction: 'DESC', type: 'uuid' },
      },
      page,
    );
  }

  async create(
    scope: Scope,
    viewer: Viewer,
    input: {
      name: string;
      description?: string | null;
      templateKey?: string | null;
      settings?: Record<string, unknown> | null;
      gitRepoUrl?: string | null;
    },
  ): Promise<Project> {
    return inTransaction(scope, async (tx) => {
      let template: ProjectTemplate | null = null;
      if (input.templateKey) {
        template = await tx.em.findOne(ProjectTemplate, { key: input.templateKey });
        if (!template) throw BadInputError.field('templateKey', `no template named ${input.templateKey}`);
      }
      const project = tx.em.create(Project, {
        name: input.name.trim(),
        description: input.description ?? null,
        owner: viewer.userId,
        template: template?.id ?? null,
        settings: { ...(template?.defaults ?? {}), ...(input.settings ?? {}) },
        gitRepoUrl: input.gitRepoUrl ?? null,
      });
      // Access is by membership, so the creator's OWNER row is part of the project's creation.
      tx.em.create(ProjectMember, { project, user: viewer.userId, role: ProjectRole.OWNER, addedBy: viewer.userId });
      await tx.em.flush();
      this.audit.record(tx, {
        action: 'project.create',
        entityType: 'Project',
        entityId: project.id,
        after: { ...snapshot(project), template: input.templateKey ?? null },
      });
      return project;
    });
  }

  async update(
    scope: Scope,
    viewer: Viewer,
    input: {
      id: string;
      name?: string | null;
      description?: string | null;
      settings?: Record<string, unknown> | null;
      gitRepoUrl?: string | null;
    },
  ): Promise<Project> {
    return this.change(scope, viewer, input.id, ProjectRole.MAINTAINER, 'project.update', (p) => {
      if (p.status === ProjectStatus.DELETED) throw new ConflictError('A deleted project cannot be changed');
      if (input.name) p.name = input.name.trim();
      if (input.description !== undefined) p.description = input.description;
      if (input.settings) p.settings = input.settings;
      if (input.gitRepoUrl !== undefined) p.gitRepoUrl = input.gitRepoUrl;
    });
  }

  /** ARCHIVED (read-only for work, reversible by restore) or DELETED (soft delete; OWNER only). */
  async setStatus(scope: Scope, viewer: Viewer, id: string, status: ProjectStatus): Promise<Project> {
    const min = status === ProjectStatus.DELETED ? ProjectRole.OWNER : ProjectRole.MAINTAINER;
    return this.change(scope, viewer, id, min, `project.${status.toLowerCase()}`, (p) => {
      if (p.status === status) return;
      if (p.status === ProjectStatus.DELETED && !isHumanAdmin(viewer))
        throw new ConflictError('A deleted project cannot be changed');
      p.status = status;
    });
  }

  private async change(
    scope: Scope,
    viewer: Viewer,
    id: string,
    min: ProjectRole,
    action: string,
    apply: (p: Project) => void,
  ): Promise<Project> {
    const projectId = requireUuid(id);
    await this.policy.require(viewer, projectId, min);
    return inTransaction(scope, async (tx) => {
      // FOR UPDATE: a concurrent change waits its turn. (LockMode 4, used here before, is
      // PESSIMISTIC_PARTIAL_WRITE, FOR UPDATE SKIP LOCKED: the row would seem not to exist.)
      const p = await tx.em.findOneOrFail(Project, projectId, { lockMode: LockMode.PESSIMISTIC_WRITE });
      const before = snapshot(p);
      apply(p);
      this.audit.record(tx, { action, entityType: 'Project', entityId: p.id, before, after: snapshot(p) });
      if (p.status !== before.status) await this.accessChanged(tx, p.id);
      return p;
    });
  }

  /** MAINTAINER+ adds CONTRIBUTORs and VIEWERs; only the OWNER appoints MAINTAINERs. */
  async addMember(
    scope: Scope,
    viewer: Viewer,
    input: { projectId: string; userId: string; role: ProjectRole },
  ): Promise<ProjectMember> {
    const { projectId, userId, role } = input;
    if (role === ProjectRole.OWNER)
      throw BadInputError.field('role', 'use transferProjectOwnership to change the owner');
    await this.requireWritable(
      viewer,
      projectId,
      role === ProjectRole.MAINTAINER ? ProjectRole.OWNER : ProjectRole.MAINTAINER,
    );
    return conflictOnDuplicate(
      () =>
        inTransaction(scope, async (tx) => {
          const user = await tx.em.findOne(User, userId);
          // A blocked or inactive user is answered as unknown: adding them must not confirm they exist.
          if (!user || user.status !== UserStatus.ACTIVE || user.isBlocked) throw new NotFoundError('User', userId);
          const member = tx.em.create(ProjectMember, {
            project: projectId,
            user: userId,
            role,
            addedBy: viewer.userId,
          });
          await tx.em.flush();
          this.audit.record(tx, {
            action: 'project.addMember',
            entityType: 'Project',
            entityId: projectId,
            after: { userId, role },
          });
          return member;
        }),
      'That user is already a member of the project',
    );
  }

  async changeMemberRole(
    scope: Scope,
    viewer: Viewer,
    input: { projectId: string; userId: string; role: ProjectRole },
  ): Promise<ProjectMember> {
    const mine = await this.requireWritable(viewer, input.projectId, ProjectRole.MAINTAINER);
    return inTransaction(scope, async (tx) => {
      const member = await this.memberOf(tx, input.projectId, input.userId);
      if (member.role === ProjectRole.OWNER)
        throw new ConflictError("The owner's role changes only by transferring ownership");
      if (
        (member.role === ProjectRole.MAINTAINER || input.role === ProjectRole.MAINTAINER) &&
        !atLeast(mine, ProjectRole.OWNER)
      ) {
        throw new ForbiddenError('Only the owner appoints or changes maintainers');
      }
      const before = member.role;
      member.role = input.role;
      this.audit.record(tx, {
        action: 'project.changeMemberRole',
        entityType: 'Project',
        entityId: input.projectId,
        before: { userId: input.userId, role: before },
        after: { userId: input.userId, role: input.role },
      });
      await this.accessChanged(tx, input.projectId);
      return member;
    });
  }

  /** A member may leave; maintainers remove contributors and viewers; the owner removes anyone but itself. */
  async removeMember(scope: Scope, viewer: Viewer, input: { projectId: string; userId: string }): Promise<boolean> {
    const self = input.userId === viewer.userId;
    const mine = await this.requireWritable(
      viewer,
      input.projectId,
      self ? ProjectRole.VIEWER : ProjectRole.MAINTAINER,
    );
    return inTransaction(scope, async (tx) => {
      const member = await this.memberOf(tx, input.projectId, input.userId);
      if (member.role === ProjectRole.OWNER)
        throw new ConflictError('The owner cannot leave or be removed; transfer ownership first');
      if (!self && member.role === ProjectRole.MAINTAINER && !atLeast(mine, ProjectRole.OWNER))
        throw new ForbiddenError('Only the owner removes maintainers');
      tx.em.remove(member);
      // Their open assignments in the project end with their membership.
      await tx.em.execute(
        `UPDATE task_assignees SET active = false WHERE user_id = ? AND active AND task_id IN (SELECT id FROM tasks WHERE project_id = ?)`,
        [input.userId, input.projectId],
      );
      this.audit.record(tx, {
        action: 'project.removeMember',
        entityType: 'Project',
        entityId: input.projectId,
        before: { userId: input.userId, role: member.role },
      });
      await this.accessChanged(tx, input.projectId);
      return true;
    });
  }

  /** The new owner must be a member; the old owner stays as MAINTAINER. */
  async transferOwnership(
    scope: Scope,
    viewer: Viewer,
    input: { projectId: string; userId: string },
  ): Promise<Project> {
    await this.requireWritable(viewer, input.projectId, ProjectRole.OWNER);
    return inTransaction(scope, async (tx) => {
      const project = await tx.em.findOneOrFail(Project, input.projectId, { lockMode: LockMode.PESSIMISTIC_WRITE });
      const next = await this.memberOf(tx, input.projectId, input.userId);
      const previous = await tx.em.findOne(ProjectMember, { project: input.projectId, role: ProjectRole.OWNER });
      if (next.role === ProjectRole.OWNER) return project;
      if (previous) previous.role = ProjectRole.MAINTAINER;
      await tx.em.flush(); // the old owner steps down before the new one steps up
      next.role = ProjectRole.OWNER;
      project.owner = tx.em.getReference(User, input.userId) as never;
      this.audit.record(tx, {
        action: 'project.transferOwnership',
        entityType: 'Project',
        entityId: project.id,
        before: { owner: previous?.user.id ?? null },
        after: { owner: input.userId },
      });
      await this.accessChanged(tx, project.id);
      return project;
    });
  }

  private async memberOf(tx: Scope, projectId: string, userId: string): Promise<ProjectMember> {
    const m = await tx.em.findOne(
      ProjectMember,
      { project: projectId, user: userId },
      { lockMode: LockMode.PESSIMISTIC_WRITE },
    );
    if (!m) throw new NotFoundError('ProjectMember', userId);
    return m;
  }

  /**
   * Like policy.require, and the project must be ACTIVE: archived and deleted projects are
   * read-only for everyone, so the state check lives here, once, for every write.
   */
  async requireWritable(viewer: Viewer, id: string, min: ProjectRole): Promise<ProjectRole> {
    const projectId = requireUuid(id, 'projectId');
    const role = await this.policy.require(viewer, projectId, min);
    const row = await this.db.one<{ status: ProjectStatus }>(
      sql`SELECT status FROM projects WHERE id = ${projectId}::uuid`,
    );
    if (row?.status !== ProjectStatus.ACTIVE)
      throw new ConflictError(`The project is ${row?.status.toLowerCase()}; restore it first`);
    return role;
  }

  // ---------- files and branches (agents report them with service tokens) ----------

  async registerFile(
    scope: Scope,
    viewer: Viewer,
    input: {
      projectId: string;
      path: string;
      fileType?: string | null;
      sizeBytes?: number | null;
      sha256?: string | null;
      createdByAgent?: AgentType | null;
    },
  ): Promise<ProjectFile> {
    await this.requireWritable(viewer, input.projectId, ProjectRole.CONTRIBUTOR);
    return inTransaction(scope, async (tx) => {
      const [row] = await tx.em.execute<{ id: string; inserted: boolean }[]>(
        `INSERT INTO project_files (id, project_id, path, file_type, size_bytes, sha256, created_by_agent, created_by_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (project_id, path) DO UPDATE SET file_type = EXCLUDED.file_type, size_bytes = EXCLUDED.size_bytes,
           sha256 = EXCLUDED.sha256, updated_at = now()
         RETURNING id, (xmax = 0) AS inserted`,
        [
          newId(),
          input.projectId,
          input.path,
          input.fileType ?? null,
          input.sizeBytes ?? null,
          input.sha256 ?? null,
          input.createdByAgent ?? null,
          viewer.serviceActor ? null : viewer.userId,
        ],
      );
      this.audit.record(tx, {
        action: row!.inserted ? 'projectFile.register' : 'projectFile.update',
        entityType: 'ProjectFile',
        entityId: row!.id,
        after: { projectId: input.projectId, path: input.path, sha256: input.sha256 ?? null },
      });
      return tx.em.findOneOrFail(ProjectFile, row!.id, { refresh: true });
    });
  }

  async deleteFile(scope: Scope, viewer: Viewer, input: { projectId: string; path: string }): Promise<boolean> {
    await this.requireWritable(viewer, input.projectId, ProjectRole.CONTRIBUTOR);
    return inTransaction(scope, async (tx) => {
      const rows = await tx.em.execute<{ id: string }[]>(
        `DELETE FROM project_files WHERE project_id = ? AND path = ? RETURNING id`,
        [input.projectId, input.path],
      );
      if (!rows[0]) throw new NotFoundError('ProjectFile', input.path);
      this.audit.record(tx, {
        action: 'projectFile.delete',
        entityType: 'ProjectFile',
        entityId: rows[0].id,
        before: { projectId: input.projectId, path: input.path },
      });
      return true;
    });
  }

  async createBranch(
    scope: Scope,
    viewer: Viewer,
    input: { projectId: string; name: string; createdByAgent?: AgentType | null },
  ): Promise<GitBranch> {
    await this.requireWritable(viewer, input.projectId, ProjectRole.CONTRIBUTOR);
    return conflictOnDuplicate(
      () =>
        inTransaction(scope, async (tx) => {
          const b = tx.em.create(GitBranch, {
            project: input.projectId,
            name: input.name,
            createdByAgent: input.createdByAgent ?? null,
          });
          await tx.em.flush();
          this.audit.record(tx, {
            action: 'gitBranch.create',
            entityType: 'GitBranch',
            entityId: b.id,
            after: { projectId: input.projectId, name: input.name },
          });
          return b;
        }),
      `Branch ${input.name} already exists in the project`,
    );
  }

  async markBranchMerged(scope: Scope, viewer: Viewer, input: { projectId: string; name: string }): Promise<GitBranch> {
    await this.requireWritable(viewer, input.projectId, ProjectRole.CONTRIBUTOR);
    return inTransaction(scope, async (tx) => {
      const b = await tx.em.findOne(GitBranch, { project: input.projectId, name: input.name });
      if (!b) throw new NotFoundError('GitBranch', input.name);
      if (!b.isMerged) {
        b.isMerged = true;
        b.mergedAt = new Date();
        this.audit.record(tx, { action: 'gitBranch.merge', entityType: 'GitBranch', entityId: b.id });
      }
      return b;
    });
  }

  /** Reads of a project's files, for the Project.files connection. */
  files(projectId: string, fields: Iterable<string>, page: PageArgs, where?: Sql) {
    return paginate(
      this.db,
      {
        model: readModel(ProjectFile),
        fields,
        where: and([sql`t.project_id = ${projectId}::uuid`, where]),
        sort: { property: 'id', direction: 'ASC', type: 'uuid' },
      },
      page,
    );
  }
}
