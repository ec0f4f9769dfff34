import type { EntityManager } from '@mikro-orm/postgresql';
import sql, { type Sql } from 'sql-template-tag';

import type { Config } from '../../config.js';
import type { SqlClient } from '../../db/sql.js';
import type { EventBus } from '../../events/bus.js';
import type { EventScope } from '../../events/subscription.js';
import { NEWEST_FIRST, paginate, type PageArgs } from '../../shared/connection.js';
import { BadInputError, ConflictError, ForbiddenError, NotFoundError, requireUuid } from '../../shared/errors.js';
import { and, readModel } from '../../shared/read-model.js';
import { inTransaction, systemMeta, type Scope, type Viewer } from '../../shared/scope.js';
import { isHumanAdmin } from '../../shared/viewer.js';
import type { AuditService } from '../audit/index.js';
import type { UserService } from '../identity/index.js';
import type { ProjectService } from '../projects/index.js';
import { ProjectRole } from '../projects/project-member.entity.js';
import { Approval, ApprovalStatus } from './approval.entity.js';
import { APPROVAL_DECIDED, APPROVAL_REQUESTED, type ApprovalEvent } from './approval.events.js';
import type { ApprovalWhere, RequestApprovalInput } from './approval.inputs.js';
import { NotificationPriority, NotificationType } from './notification.entity.js';
import type { NotificationService } from './notification.service.js';
import type { TaskPolicy } from './task.policy.js';

export interface ApprovalDeps {
  config: Config;
  db: SqlClient;
  bus: EventBus;
  audit: AuditService;
  projects: ProjectService;
  tasks: TaskPolicy;
  notifications: NotificationService;
  users: Pick<UserService, 'activeAdminIds'>;
}

/** Runs inside the transaction that decides (or expires) an approval of its action type; a throw rolls the decision back. */
export type ApprovalDecisionHook = (tx: Scope, approval: ApprovalRow, status: ApprovalStatus) => Promise<void>;

export interface ApprovalRow {
  id: string;
  project_id: string | null;
  task_id: string | null;
  requested_by_id: string | null;
  status: ApprovalStatus;
  action_type: string;
}

/**
 * Approvals: an action waits for a human. Deciders are admins and the
 * project's OWNER/MAINTAINERs (admins alone for personal tasks); the requester never
 * decides its own. A decision is one conditional UPDATE, so of two racing deciders
 * exactly one wins; pending approvals past their expiry are expired by a job.
 */
export class ApprovalService {
  private readonly hooks = new Map<string, ApprovalDecisionHook[]>();

  constructor(private readonly deps: ApprovalDeps) {}

  /**
   * Lets another module act on decisions of its own action type (e.g. 'experiment.promote')
   * in the deciding transaction: exactly once, whichever instance decides, and atomically with it.
   */
  onDecided(actionType: string, hook: ApprovalDecisionHook): void {
    this.hooks.set(actionType, [...(this.hooks.get(actionType) ?? []), hook]);
  }

  async request(scope: Scope, viewer: Viewer, input: RequestApprovalInput): Promise<Approval> {
    let projectId = input.projectId ? requireUuid(input.projectId, 'projectId') : null;
    const taskId = input.taskId ? requireUuid(input.taskId, 'taskId') : null;
    if (!taskId && !projectId) throw new BadInputError('Give the taskId or the projectId the action belongs to');
    if (taskId) {
      const access = await this.deps.tasks.require(viewer, taskId, ProjectRole.CONTRIBUTOR);
      if (projectId && access.projectId !== projectId)
        throw BadInputError.field('projectId', "is not the task's project");
      projectId = access.projectId;
    }
    if (projectId) await this.deps.projects.requireWritable(viewer, projectId, ProjectRole.CONTRIBUTOR);
    const expiresAt = input.expiresAt ?? new Date(Date.now() + this.deps.config.APPROVAL_DEFAULT_TTL_HOURS * 3600_000);
    if (expiresAt <= new Date()) throw BadInputError.field('expiresAt', 'must be in the future');
    const requestedBy = viewer.serviceActor ? null : viewer.userId;
    const deciders = (
      projectId ? await this.deps.projects.policy.deciders(projectId) : await this.deps.users.activeAdminIds()
    ).filter((id) => id !== requestedBy);

    return inTransaction(scope, async (tx) => {
      const approval = tx.em.create(Approval, {
        task: taskId,
        project: projectId,
        actionType: input.actionType,
        details: input.details ?? null,
        requestedBy,
        requestedByActor: viewer.serviceActor ?? null,
        expiresAt,
      });
      await tx.em.flush();
      this.deps.audit.record(tx, {
        action: 'approval.request',
        entityType: 'Approval',
        entityId: approval.id,
        after: { taskId, projectId, actionType: input.actionType, expiresAt },
      });
      await this.deps.notifications.notify(
        tx,
        deciders.map((userId) => ({
          userId,
          type: NotificationType.APPROVAL,
          priority: NotificationPriority.HIGH,
          title: `Approval requested: ${input.actionType}`,
          message: viewer.serviceActor ? `Requested by ${viewer.serviceActor}` : null,
          data: { approvalId: approval.id, taskId, projectId },
        })),
      );
      await this.deps.bus.publish(tx.em, APPROVAL_REQUESTED, {
        approvalId: approval.id,
        projectId,
        requestedBy,
      } satisfies ApprovalEvent);
      return approval;
    });
  }

  /** APPROVED or REJECTED, exactly once, by someone who may decide and did not ask. */
  async decide(
    scope: Scope,
    viewer: Viewer,
    id: string,
    status: ApprovalStatus.APPROVED | ApprovalStatus.REJECTED,
    notes?: string | null,
  ): Promise<Approval> {
    const approvalId = requireUuid(id);
    const row = await this.deps.db.one<ApprovalRow>(
      sql`SELECT id, project_id, task_id, requested_by_id, status, action_type FROM approvals WHERE id = ${approvalId}::uuid`,
    );
    if (!row || !(await this.canRead(viewer, row))) throw new NotFoundError('Approval', approvalId);
    if (row.requested_by_id === viewer.userId) throw new ForbiddenError('You cannot decide your own request');
    if (!(await this.mayDecide(viewer, row.project_id)))
      throw new ForbiddenError("Only admins and the project's owner or maintainers decide approvals");
    // An archived (or deleted) project's work is frozen: its requests wait until it is restored.
    if (row.project_id) await this.deps.projects.requireWritable(viewer, row.project_id, ProjectRole.VIEWER);

    return inTransaction(scope, async (tx) => {
      // The project's status is checked again here: one archived since the check above is not decided either.
      const [won] = await tx.em.execute<{ id: string }[]>(
        `UPDATE approvals SET status = ?, decided_by_id = ?, decided_at = now(), notes = ?, updated_at = now()
          WHERE id = ? AND status = 'PENDING' AND (expires_at IS NULL OR expires_at > now())
            AND (project_id IS NULL OR EXISTS (SELECT 1 FROM projects p WHERE p.id = approvals.project_id AND p.status = 'ACTIVE')) RETURNING id`,
        [status, viewer.userId, notes ?? null, approvalId],
      );
      if (!won) {
        const [now] = await tx.em.execute<{ status: string; expired: boolean }[]>(
          `SELECT status, (status = 'PENDING' AND expires_at <= now()) AS expired FROM approvals WHERE id = ?`,
          [approvalId],
        );
        if (now?.status === 'PENDING' && !now.expired)
          throw new ConflictError('The project is no longer active; restore it first');
        throw new ConflictError(
          now?.expired ? 'This approval has expired' : `This approval is already ${now?.status}`,
          { status: now?.expired ? 'EXPIRED' : now?.status },
        );
      }
      this.deps.audit.record(tx, {
        action: `approval.${status === ApprovalStatus.APPROVED ? 'approve' : 'reject'}`,
        entityType: 'Approval',
        entityId: approvalId,
        before: { status: 'PENDING' },
        after: { status, notes: notes ?? null },
      });
      await this.afterDecision(tx, row, status);
      return tx.em.findOneOrFail(Approval, approvalId, { refresh: true });
    });
  }

  /** Expires due approvals: one statement, run by a job once across instances. */
  async expireDue(em: EntityManager): Promise<number> {
    const scope: Scope = { em, viewer: null, meta: systemMeta('approvals.expire') };
    return inTransaction(scope, async (tx) => {
      const rows = await tx.em.execute<ApprovalRow[]>(
        `UPDATE approvals SET status = 'EXPIRED', decided_at = now(), updated_at = now()
          WHERE status = 'PENDING' AND expires_at <= now()
          RETURNING id, project_id, task_id, requested_by_id, status, action_type`,
      );
      for (const row of rows) {
        this.deps.audit.record(tx, {
          action: 'approval.expire',
          entityType: 'Approval',
          entityId: row.id,
          actorId: null,
          actorLabel: 'job:approvals.expire',
          before: { status: 'PENDING' },
          after: { status: 'EXPIRED' },
        });
        await this.afterDecision(tx, row, ApprovalStatus.EXPIRED);
      }
      return rows.length;
    });
  }

  private async afterDecision(tx: Scope, row: ApprovalRow, status: ApprovalStatus) {
    for (const hook of this.hooks.get(row.action_type) ?? []) await hook(tx, row, status);
    if (row.requested_by_id) {
      await this.deps.notifications.notify(tx, {
        userId: row.requested_by_id,
        type: NotificationType.APPROVAL,
        priority: status === ApprovalStatus.APPROVED ? NotificationPriority.NORMAL : NotificationPriority.HIGH,
        title: `Your request "${row.action_type}" was ${status.toLowerCase()}`,
        data: { approvalId: row.id, taskId: row.task_id, projectId: row.project_id, status },
      });
    }
    await this.deps.bus.publish(tx.em, APPROVAL_DECIDED, {
      approvalId: row.id,
      projectId: row.project_id,
      requestedBy: row.requested_by_id,
    } satisfies ApprovalEvent);
  }

  /** Admins; for a project also its OWNER and MAINTAINERs. */
  async mayDecide(viewer: Viewer, projectId: string | null, scope?: EventScope): Promise<boolean> {
    if (viewer.serviceActor) return false;
    if (isHumanAdmin(viewer)) return true;
    return projectId ? this.deps.projects.policy.canDecide(viewer, projectId, scope) : false;
  }

  private async canRead(
    viewer: Viewer,
    row: Pick<ApprovalRow, 'project_id' | 'task_id' | 'requested_by_id'>,
  ): Promise<boolean> {
    if (isHumanAdmin(viewer)) return true;
    if (row.requested_by_id === viewer.userId) return true;
    if (row.project_id) return this.deps.projects.policy.canRead(viewer, row.project_id);
    return row.task_id ? (await this.deps.tasks.access(viewer, row.task_id)) !== null : false;
  }

  /** Subscription filter: those who may decide (not the requester) hear of new requests. */
  async hearsRequest(viewer: Viewer, e: ApprovalEvent, scope?: EventScope): Promise<boolean> {
    return e.requestedBy !== viewer.userId && this.mayDecide(viewer, e.projectId, scope);
  }

  /** Subscription filter: the requester and those who may decide hear of decisions. */
  async hearsDecision(viewer: Viewer, e: ApprovalEvent, scope?: EventScope): Promise<boolean> {
    return e.requestedBy === viewer.userId || this.mayDecide(viewer, e.projectId, scope);
  }

  /** SQL condition: approvals (aliased `t`) the viewer may read. */
  visible(viewer: Viewer): Sql {
    if (viewer.projectIds?.length)
      return sql`(t.project_id IS NOT NULL AND ${this.deps.projects.policy.visible(viewer, 't.project_id')})`;
    if (isHumanAdmin(viewer)) return sql`TRUE`;
    return sql`(t.requested_by_id = ${viewer.userId}::uuid
      OR (t.project_id IS NOT NULL AND ${this.deps.projects.policy.visible(viewer, 't.project_id')})
      OR (t.project_id IS NULL AND EXISTS (SELECT 1 FROM tasks vt WHERE vt.id = t.task_id AND ${this.deps.tasks.visible(viewer, 'vt')})))`;
  }

  list(viewer: Viewer, fields: Iterable<string>, where: ApprovalWhere, page: PageArgs) {
    // Past its expiry a PENDING approval can no longer be decided (decide() refuses it), so
    // it awaits no one even before the expiry job has marked it EXPIRED.
    const decidable = sql`t.status = 'PENDING' AND (t.expires_at IS NULL OR t.expires_at > now()) AND t.requested_by_id IS DISTINCT FROM ${viewer.userId}::uuid`;
    const awaiting = where.awaitingMe
      ? isHumanAdmin(viewer)
        ? decidable
        : sql`${decidable} AND EXISTS (
                SELECT 1 FROM project_members dm WHERE dm.project_id = t.project_id AND dm.user_id = ${viewer.userId}::uuid AND dm.role IN ('OWNER', 'MAINTAINER'))`
      : null;
    return paginate(
      this.deps.db,
      {
        model: readModel(Approval),
        fields,
        where: and([
          this.visible(viewer),
          where.status?.length ? sql`t.status = ANY(${where.status}::approval_status[])` : null,
          where.projectId ? sql`t.project_id = ${where.projectId}::uuid` : null,
          where.taskId ? sql`t.task_id = ${where.taskId}::uuid` : null,
          where.mine ? sql`t.requested_by_id = ${viewer.userId}::uuid` : null,
          awaiting,
        ]),
        sort: NEWEST_FIRST,
      },
      page,
    );
  }
}
