import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import sql, { type Sql } from 'sql-template-tag';

import type { SqlClient } from '../../db/sql.js';
import type { EventBus } from '../../events/bus.js';
import { paginate, type Connection, type PageArgs, type SortKey } from '../../shared/connection.js';
import { BadInputError, ConflictError, ForbiddenError, NotFoundError, requireUuid } from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import { validateIntents } from '../../shared/intent-classifier.js';
import { and, defineComputed, readModel } from '../../shared/read-model.js';
import { inTransaction, systemMeta, type Scope, type Viewer } from '../../shared/scope.js';
import type { AgentType } from '../ai/agent.entity.js';
import type { AuditService } from '../audit/index.js';
import { User } from '../identity/user.entity.js';
import { atLeast, type ProjectService } from '../projects/index.js';
import { ProjectRole } from '../projects/project-member.entity.js';
import { NotificationPriority, NotificationType } from './notification.entity.js';
import type { NotificationService } from './notification.service.js';
import { TaskDependency } from './task-dependency.entity.js';
import { CRITICAL_MAX_MINUTES, OPEN_STATUSES, Task, TaskPriority, TaskStatus } from './task.entity.js';
import { TASK_DELETED, TASK_UPDATED, type TaskEvent } from './task.events.js';
import {
  OrderDirection,
  TaskOrderField,
  type ActivityKind,
  type CreateTaskInput,
  type TaskWhere,
  type UpdateTaskInput,
} from './task.inputs.js';
import type { TaskAccess, TaskPolicy } from './task.policy.js';

/**
 * The status machine: PENDING → ASSIGNED → IN_PROGRESS →
 * COMPLETED | FAILED, and any open state → CANCELLED. Assigning the first user moves a
 * PENDING task to ASSIGNED; removing the last assignee moves an ASSIGNED one back.
 */
const TRANSITIONS: Record<TaskStatus, readonly TaskStatus[]> = {
  [TaskStatus.PENDING]: [TaskStatus.ASSIGNED, TaskStatus.CANCELLED],
  [TaskStatus.ASSIGNED]: [TaskStatus.IN_PROGRESS, TaskStatus.CANCELLED],
  [TaskStatus.IN_PROGRESS]: [TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED],
  [TaskStatus.COMPLETED]: [],
  [TaskStatus.FAILED]: [],
  [TaskStatus.CANCELLED]: [],
};

export const canTransition = (from: TaskStatus, to: TaskStatus) => TRANSITIONS[from].includes(to);

/** Due within this long counts as DUE_SOON (one day). */
const DUE_SOON = `interval '1 day'`;

// The task_summary view, computed by PostgreSQL per row when selected.
defineComputed(Task, {
  urgency: `CASE WHEN t.due_date IS NULL OR t.status IN ('COMPLETED', 'FAILED', 'CANCELLED') THEN 'ON_TRACK'
                 WHEN t.due_date < now() THEN 'OVERDUE'
                 WHEN t.due_date <= now() + ${DUE_SOON} THEN 'DUE_SOON' ELSE 'ON_TRACK' END`,
  approvalCount: `(SELECT count(*)::int FROM approvals a WHERE a.task_id = t.id)`,
});

const ORDER: Record<TaskOrderField, Omit<SortKey, 'direction'>> = {
  [TaskOrderField.CREATED_AT]: { property: 'id', type: 'uuid' }, // UUIDv7: id order is creation order
  [TaskOrderField.UPDATED_AT]: { property: 'updatedAt', type: 'timestamptz' },
  [TaskOrderField.DUE_DATE]: { property: 'dueDate', type: 'timestamptz', nulls: `'infinity'` },
  [TaskOrderField.PRIORITY]: { property: 'priority', type: 'task_priority' },
};

function taskSort(order?: { field: TaskOrderField; direction: OrderDirection } | null): SortKey {
  const o = order ?? { field: TaskOrderField.CREATED_AT, direction: OrderDirection.DESC };
  return { ...ORDER[o.field], direction: o.direction };
}

const snapshot = (t: Task) => ({
  title: t.title,
  status: t.status,
  priority: t.priority,
  dueDate: t.dueDate ?? null,
  estimatedMinutes: t.estimatedMinutes ?? null,
  tags: t.tags,
  allowedIntents: t.allowedIntents,
  assignedAgents: t.assignedAgents,
  primaryAgent: t.primaryAgent ?? null,
});

export interface TaskDeps {
  db: SqlClient;
  bus: EventBus;
  audit: AuditService;
  projects: ProjectService;
  policy: TaskPolicy;
  notifications: NotificationService;
}

/**
 * Tasks: their lifecycle (the status machine above, with its times set here, never by the
 * client), assignees, agents and dependencies. Access is TaskPolicy's (a project task
 * through its project's membership, a personal task through its creator and assignees);
 * the access checks run before the transaction, so a refused call takes no row lock.
 * Writes record their audit entry and publish their event (taskUpdated, taskDeleted)
 * in their transaction: subscribers hear only of what committed.
 */
export class TaskService {
  constructor(private readonly deps: TaskDeps) {}

  // ---------- reads ----------

  /** The `where` of a task list, over the row aliased `t`, visibility included. */
  filter(viewer: Viewer, where: TaskWhere = {}): Sql {
    const search = where.search?.trim();
    return and([
      this.deps.policy.visible(viewer, 't'),
      where.projectId ? sql`t.project_id = ${requireUuid(where.projectId, 'projectId')}::uuid` : null,
      where.status?.length ? sql`t.status = ANY(${where.status}::task_status[])` : null,
      where.priority?.length ? sql`t.priority = ANY(${where.priority}::task_priority[])` : null,
      where.assigneeId
        ? sql`EXISTS (SELECT 1 FROM task_assignees fa WHERE fa.task_id = t.id AND fa.user_id = ${where.assigneeId}::uuid AND fa.active)`
        : null,
      where.tag ? sql`t.tags @> ARRAY[${where.tag}]::text[]` : null,
      where.dueBefore ? sql`t.due_date < ${where.dueBefore}` : null,
      where.dueAfter ? sql`t.due_date > ${where.dueAfter}` : null,
      where.overdue === true ? sql`t.due_date < now() AND t.status = ANY(${OPEN_STATUSES}::task_status[])` : null,
      where.overdue === false
        ? sql`NOT (t.due_date IS NOT NULL AND t.due_date < now() AND t.status = ANY(${OPEN_STATUSES}::task_status[]))`
        : null,
      where.parentId ? sql`t.parent_id = ${where.parentId}::uuid` : null,
      // The same expression as the GIN index tasks_fulltext_index, so the index serves it.
      search
        ? sql`to_tsvector('english', t.title || ' ' || coalesce(t.description, '')) @@ websearch_to_tsquery('english', ${search})`
        : null,
    ]);
  }

  /** The sort key of a task list: by the given field and direction, newest first by default. */
  sort(order: Parameters<typeof taskSort>[0]): SortKey {
    return taskSort(order);
  }

  list(
    viewer: Viewer,
    fields: Iterable<string>,
    where: TaskWhere | null | undefined,
    order: Parameters<typeof taskSort>[0],
    page: PageArgs,
  ): Promise<Connection<Record<string, unknown>>> {
    return paginate(
      this.deps.db,
      { model: readModel(Task), fields, where: this.filter(viewer, where ?? {}), sort: taskSort(order) },
      page,
    );
  }

  /** Counts per UTC day and kind over the last `days` days, of the tasks and approvals the viewer may see. */
  async dailyActivity(
    viewer: Viewer,
    projectId: string | null | undefined,
    days: number,
  ): Promise<{ day: string; kind: ActivityKind; count: number }[]> {
    const tasks = this.filter(viewer, projectId ? { projectId } : {});
    return this.deps.db.query(sql`
      WITH visible AS (SELECT t.id, t.status, t.created_at, t.completed_at FROM tasks t WHERE ${tasks}),
      events AS (
        SELECT created_at AS at, 'TASK_CREATED' AS kind FROM visible
        UNION ALL SELECT completed_at, 'TASK_COMPLETED' FROM visible WHERE status = 'COMPLETED'
        UNION ALL SELECT completed_at, 'TASK_FAILED' FROM visible WHERE status = 'FAILED'
        UNION ALL SELECT a.created_at, 'APPROVAL_REQUESTED' FROM approvals a JOIN visible v ON v.id = a.task_id
        UNION ALL SELECT a.decided_at, 'APPROVAL_DECIDED' FROM approvals a JOIN visible v ON v.id = a.task_id WHERE a.decided_at IS NOT NULL)
      SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, kind, count(*)::int AS count
        FROM events WHERE at >= now() - make_interval(days => ${days})
       GROUP BY 1, 2 ORDER BY 1 DESC, 2`);
  }

  // ---------- writes ----------

  async create(scope: Scope, viewer: Viewer, input: CreateTaskInput): Promise<Task> {
    const projectId = input.projectId ? requireUuid(input.projectId, 'projectId') : null;
    if (projectId) await this.deps.projects.requireWritable(viewer, projectId, ProjectRole.CONTRIBUTOR);
    validateIntents(input.allowedIntents);
    // Allowed intents bound what the task's assignees may use AI for: setting them is a maintainer's call.
    if (projectId && input.allowedIntents?.length)
      await this.deps.projects.policy.require(viewer, projectId, ProjectRole.MAINTAINER);
    const priority = input.priority ?? TaskPriority.MEDIUM;
    checkEstimate(priority, input.estimatedMinutes);
    if (input.parentId) {
      const parent = await this.deps.policy.require(viewer, input.parentId, ProjectRole.CONTRIBUTOR);
      if (parent.projectId !== projectId)
        throw BadInputError.field('parentId', 'the parent task must be in the same project');
    }
    const dependsOn = [...new Set(input.dependsOn ?? [])];
    await this.assertSameProject(viewer, dependsOn, projectId, 'dependsOn');

    return inTransaction(scope, async (tx) => {
      const task = tx.em.create(Task, {
        title: input.title.trim(),
        description: input.description ?? null,
        project: projectId,
        parent: input.parentId ?? null,
        createdBy: viewer.userId,
        priority,
        dueDate: input.dueDate ?? null,
        estimatedMinutes: input.estimatedMinutes ?? null,
        tags: input.tags ?? [],
        allowedIntents: input.allowedIntents ?? [],
        scope: input.scope ?? null,
        assignedAgents: input.assignedAgents ?? [],
        primaryAgent: input.primaryAgent ?? null,
        metadata: input.metadata ?? {},
      });
      for (const id of dependsOn) tx.em.create(TaskDependency, { task, dependsOn: id });
      await tx.em.flush();
      this.deps.audit.record(tx, {
        action: 'task.create',
        entityType: 'Task',
        entityId: task.id,
        after: { ...snapshot(task), projectId, dependsOn },
      });
      await this.publish(tx, task.id, projectId);
      return task;
    });
  }

  async update(scope: Scope, viewer: Viewer, input: UpdateTaskInput): Promise<Task> {
    validateIntents(input.allowedIntents);
    return this.change(scope, viewer, input.id, ProjectRole.CONTRIBUTOR, 'task.update', async (_tx, t, access) => {
      // Allowed intents govern the task's assignees (up to an automatic block): MAINTAINER+ only.
      if (input.allowedIntents && !atLeast(access.role, ProjectRole.MAINTAINER))
        throw new ForbiddenError("Only a MAINTAINER or higher changes a task's allowed intents");
      if (input.title) t.title = input.title.trim();
      if (input.description !== undefined) t.description = input.description;
      if (input.priority) t.priority = input.priority;
      if (input.clearDueDate) t.dueDate = null;
      else if (input.dueDate) t.dueDate = input.dueDate;
      if (input.dueDate || input.clearDueDate) t.overdueNotifiedAt = null;
      if (input.allowedIntents) t.allowedIntents = input.allowedIntents;
      if (input.scope !== undefined) t.scope = input.scope;
      if (input.tags) t.tags = input.tags;
      if (input.estimatedMinutes !== undefined && input.estimatedMinutes !== null)
        t.estimatedMinutes = input.estimatedMinutes;
      if (input.results) t.results = input.results;
      if (input.metadata) t.metadata = input.metadata;
      checkEstimate(t.priority, t.estimatedMinutes);
    });
  }

  /** Deleted tasks (admins), most recently deleted first. */
  deleted(
    fields: Iterable<string>,
    projectId: string | null,
    page: PageArgs,
  ): Promise<Connection<Record<string, unknown>>> {
    const where = and([sql`t.deleted_at IS NOT NULL`, projectId ? sql`t.project_id = ${projectId}::uuid` : null]);
    return paginate(
      this.deps.db,
      {
        model: readModel(Task),
        fields,
        where,
        sort: { property: 'deletedAt', direction: 'DESC', type: 'timestamptz' },
      },
      page,
    );
  }

  /** Brings a deleted task back (admins; the auth checker let only them in). */
  async restore(scope: Scope, id: string): Promise<Task> {
    const taskId = requireUuid(id);
    return inTransaction(scope, async (tx) => {
      const t = await tx.em.findOne(
        Task,
        { id: taskId, deletedAt: { $ne: null } },
        { lockMode: LockMode.PESSIMISTIC_WRITE },
      );
      if (!t) throw new NotFoundError('Deleted task', taskId);
      t.deletedAt = null;
      t.deletedBy = null;
      this.deps.audit.record(tx, { action: 'task.restore', entityType: 'Task', entityId: taskId, after: snapshot(t) });
      await this.publish(tx, taskId, t.project?.id ?? null);
      return t;
    });
  }

  /**
   * The creator, or MAINTAINER+ of the project. Soft: the task leaves every list and
   * path (TaskPolicy sees no deleted task) but keeps its approvals, attachments and
   * audit history, and an admin may restore it.
   */
  async delete(scope: Scope, viewer: Viewer, id: string): Promise<boolean> {
    const taskId = requireUuid(id);
    const access = await this.deps.policy.require(viewer, taskId, ProjectRole.CONTRIBUTOR);
    return inTransaction(scope, async (tx) => {
      const t = await tx.em.findOne(Task, taskId, { lockMode: LockMode.PESSIMISTIC_WRITE });
      if (!t) throw new NotFoundError('Task', taskId);
      if (
        t.createdBy.id !== viewer.userId &&
        access.role !== ProjectRole.MAINTAINER &&
        access.role !== ProjectRole.OWNER
      ) {
        throw new ForbiddenError('Only the creator or a maintainer deletes a task');
      }
      const before = snapshot(t);
      t.deletedAt = new Date();
      t.deletedBy = tx.em.getReference(User, viewer.userId) as never;
      this.deps.audit.record(tx, { action: 'task.delete', entityType: 'Task', entityId: taskId, before });
      await this.deps.bus.publish(tx.em, TASK_DELETED, { taskId, projectId: access.projectId } satisfies TaskEvent);
      return true;
    });
  }

  /** Moves the task along the status machine; the service, not the client, sets the times. */
  async setStatus(scope: Scope, viewer: Viewer, id: string, status: TaskStatus): Promise<Task> {
    return this.change(scope, viewer, id, ProjectRole.CONTRIBUTOR, 'task.setStatus', async (tx, t) => {
      if (t.status === status) return;
      if (!canTransition(t.status as TaskStatus, status)) {
        throw BadInputError.field(
          'status',
          `a ${t.status} task cannot become ${status} (allowed: ${TRANSITIONS[t.status as TaskStatus].join(', ') || 'none, it is closed'})`,
        );
      }
      // ASSIGNED must mean someone (a user or an agent) has the task, or the status would lie.
      if (status === TaskStatus.ASSIGNED) {
        const [{ n }] = await tx.em.execute<{ n: number }[]>(
          `SELECT count(*)::int AS n FROM task_assignees WHERE task_id = ? AND active`,
          [t.id],
        );
        if (n === 0 && t.assignedAgents.length === 0)
          throw BadInputError.field('status', 'assign a user or an agent first');
      }
      // Work starts only when what it depends on is done; deleted dependencies no longer hold it back.
      if (status === TaskStatus.IN_PROGRESS) {
        const open = await tx.em.execute<{ id: string; title: string; status: string }[]>(
          `SELECT d.id, d.title, d.status FROM task_dependencies td JOIN tasks d ON d.id = td.depends_on_id
            WHERE td.task_id = ? AND d.status <> 'COMPLETED' AND d.deleted_at IS NULL ORDER BY d.id LIMIT 5`,
          [t.id],
        );
        if (open.length) {
          throw new BadInputError(
            `The task cannot start before its dependencies complete: ${open.map((d) => `"${d.title}" (${d.status})`).join(', ')}`,
            {
              field: 'status',
              blockedBy: open.map((d) => d.id),
            },
          );
        }
        t.startedAt = new Date();
      }
      if (status === TaskStatus.COMPLETED || status === TaskStatus.FAILED || status === TaskStatus.CANCELLED) {
        const now = new Date();
        t.completedAt = now;
        if (t.startedAt) {
          t.executionTimeSeconds = Math.round((now.getTime() - t.startedAt.getTime()) / 1000);
          t.actualMinutes = Math.round(t.executionTimeSeconds / 60);
        }
      }
      t.status = status;
    });
  }

  /**
   * Assigns a user who can see the task. Idempotent under races: one row per task and
   * user (unique), and only the call that really assigned notifies and audits.
   */
  async assign(scope: Scope, viewer: Viewer, taskId: string, userId: string): Promise<Task> {
    const access = await this.deps.policy.require(viewer, requireUuid(taskId, 'taskId'), ProjectRole.CONTRIBUTOR);
    if (access.projectId) {
      const [{ member }] = await this.deps.db.query<{ member: boolean }>(
        sql`SELECT EXISTS (SELECT 1 FROM project_members m JOIN users u ON u.id = m.user_id
                           WHERE m.project_id = ${access.projectId}::uuid AND m.user_id = ${requireUuid(userId, 'userId')}::uuid
                             AND u.status = 'ACTIVE' AND NOT u.is_blocked) AS member`,
      );
      if (!member) throw BadInputError.field('userId', "the assignee must be an active member of the task's project");
    }
    return this.change(scope, viewer, taskId, ProjectRole.CONTRIBUTOR, null, async (tx, t) => {
      if (!OPEN_STATUSES.includes(t.status as (typeof OPEN_STATUSES)[number]))
        throw new ConflictError(`A ${t.status} task takes no new assignees`);
      const rows = await tx.em.execute<{ id: string }[]>(
        `INSERT INTO task_assignees (id, task_id, user_id, assigned_by_id, assigned_at, active) VALUES (?, ?, ?, ?, now(), true)
         ON CONFLICT (task_id, user_id) DO UPDATE SET active = true, assigned_by_id = EXCLUDED.assigned_by_id, assigned_at = now()
           WHERE NOT task_assignees.active
         RETURNING id`,
        [newId(), t.id, userId, viewer.userId],
      );
      if (!rows.length) return false; // already assigned: nothing happened
      if (t.status === TaskStatus.PENDING) t.status = TaskStatus.ASSIGNED;
      this.deps.audit.record(tx, { action: 'task.assign', entityType: 'Task', entityId: t.id, after: { userId } });
      await this.deps.notifications.notify(tx, {
        userId,
        type: NotificationType.STATUS,
        priority: t.priority === TaskPriority.CRITICAL ? NotificationPriority.HIGH : NotificationPriority.NORMAL,
        title: `You were assigned "${t.title}"`,
        data: { taskId: t.id, projectId: access.projectId },
      });
    });
  }

  async unassign(scope: Scope, viewer: Viewer, taskId: string, userId: string): Promise<Task> {
    return this.change(scope, viewer, taskId, ProjectRole.CONTRIBUTOR, null, async (tx, t) => {
      const rows = await tx.em.execute(
        `UPDATE task_assignees SET active = false WHERE task_id = ? AND user_id = ? AND active RETURNING id`,
        [t.id, requireUuid(userId, 'userId')],
      );
      if (!rows.length) return false;
      const [{ n }] = await tx.em.execute<{ n: number }[]>(
        `SELECT count(*)::int AS n FROM task_assignees WHERE task_id = ? AND active`,
        [t.id],
      );
      if (n === 0 && t.assignedAgents.length === 0 && t.status === TaskStatus.ASSIGNED) t.status = TaskStatus.PENDING;
      this.deps.audit.record(tx, { action: 'task.unassign', entityType: 'Task', entityId: t.id, before: { userId } });
    });
  }

  async assignAgent(scope: Scope, viewer: Viewer, taskId: string, agent: AgentType, primary: boolean): Promise<Task> {
    return this.change(scope, viewer, taskId, ProjectRole.CONTRIBUTOR, 'task.assignAgent', async (_tx, t) => {
      if (!t.assignedAgents.includes(agent)) t.assignedAgents = [...t.assignedAgents, agent];
      if (primary || !t.primaryAgent) t.primaryAgent = agent;
      if (t.status === TaskStatus.PENDING) t.status = TaskStatus.ASSIGNED;
    });
  }

  async unassignAgent(scope: Scope, viewer: Viewer, taskId: string, agent: AgentType): Promise<Task> {
    return this.change(scope, viewer, taskId, ProjectRole.CONTRIBUTOR, 'task.unassignAgent', async (tx, t) => {
      t.assignedAgents = t.assignedAgents.filter((a) => a !== agent);
      if (t.primaryAgent === agent) t.primaryAgent = t.assignedAgents[0] ?? null;
      if (t.status === TaskStatus.ASSIGNED && t.assignedAgents.length === 0) {
        const [{ n }] = await tx.em.execute<{ n: number }[]>(
          `SELECT count(*)::int AS n FROM task_assignees WHERE task_id = ? AND active`,
          [t.id],
        );
        if (n === 0) t.status = TaskStatus.PENDING;
      }
    });
  }

  /** Refused when it would close a cycle (dependsOn already depends, transitively, on the task). */
  async addDependency(scope: Scope, viewer: Viewer, taskId: string, dependsOnId: string): Promise<Task> {
    if (taskId === dependsOnId) throw BadInputError.field('dependsOnId', 'a task cannot depend on itself');
    return this.change(
      scope,
      viewer,
      taskId,
      ProjectRole.CONTRIBUTOR,
      null,
      async (tx, t) => {
        await this.assertSameProject(viewer, [dependsOnId], t.project?.id ?? null, 'dependsOnId');
        const [cycle] = await tx.em.execute<{ found: boolean }[]>(
          `WITH RECURSIVE up(id) AS (
           SELECT depends_on_id FROM task_dependencies WHERE task_id = ?
           UNION SELECT td.depends_on_id FROM task_dependencies td JOIN up ON td.task_id = up.id)
         SELECT EXISTS (SELECT 1 FROM up WHERE id = ?) AS found`,
          [dependsOnId, t.id],
        );
        if (cycle?.found) throw BadInputError.field('dependsOnId', 'this dependency would create a cycle');
        const rows = await tx.em.execute(
          `INSERT INTO task_dependencies (task_id, depends_on_id) VALUES (?, ?) ON CONFLICT DO NOTHING RETURNING task_id`,
          [t.id, dependsOnId],
        );
        if (!rows.length) return false;
        this.deps.audit.record(tx, {
          action: 'task.addDependency',
          entityType: 'Task',
          entityId: t.id,
          after: { dependsOnId },
        });
      },
      async (tx, access) => {
        // Serialise dependency changes within the project (personal tasks: all together), so two
        // concurrent additions cannot close a cycle together. Taken BEFORE the task row is locked:
        // the other way round, A → B (holding A, wanting B's key share for the foreign key) and
        // B → A (holding B, wanting this lock) deadlock.
        await tx.em.execute(`SELECT pg_advisory_xact_lock(hashtext('task-deps:' || ?))`, [
          access.projectId ?? 'personal',
        ]);
      },
    );
  }

  async removeDependency(scope: Scope, viewer: Viewer, taskId: string, dependsOnId: string): Promise<Task> {
    return this.change(scope, viewer, taskId, ProjectRole.CONTRIBUTOR, null, async (tx, t) => {
      const rows = await tx.em.execute(
        `DELETE FROM task_dependencies WHERE task_id = ? AND depends_on_id = ? RETURNING task_id`,
        [t.id, dependsOnId],
      );
      if (!rows.length) return false;
      this.deps.audit.record(tx, {
        action: 'task.removeDependency',
        entityType: 'Task',
        entityId: t.id,
        before: { dependsOnId },
      });
    });
  }

  /** Tells the assignees of newly overdue open tasks, once per due date (a job). */
  async notifyOverdue(em: EntityManager): Promise<number> {
    return inTransaction({ em, viewer: null, meta: systemMeta('tasks.notifyOverdue') }, async (tx) => {
      const rows = await tx.em.execute<
        { task_id: string; title: string; project_id: string | null; user_id: string }[]
      >(
        `WITH due AS (
           UPDATE tasks SET overdue_notified_at = now()
            WHERE due_date < now() AND status IN ('PENDING', 'ASSIGNED', 'IN_PROGRESS') AND overdue_notified_at IS NULL AND deleted_at IS NULL
            RETURNING id, title, project_id)
         SELECT due.id AS task_id, due.title, due.project_id, a.user_id FROM due JOIN task_assignees a ON a.task_id = due.id AND a.active`,
      );
      await this.deps.notifications.notify(
        tx,
        rows.map((r) => ({
          userId: r.user_id,
          type: NotificationType.ALERT,
          priority: NotificationPriority.HIGH,
          title: `"${r.title}" is overdue`,
          data: { taskId: r.task_id, projectId: r.project_id },
        })),
      );
      return rows.length;
    });
  }

  // ---------- helpers ----------

  /**
   * One transaction with the task row locked: apply, audit (when `action` is given;
   * otherwise `apply` audits itself, or returns false when nothing changed), publish.
   */
  private async change(
    scope: Scope,
    viewer: Viewer,
    id: string,
    min: ProjectRole,
    action: string | null,
    apply: (tx: Scope, t: Task, access: TaskAccess) => Promise<void | false>,
    /** Runs in the transaction before the task row is locked (locks that must come first). */
    beforeLock?: (tx: Scope, access: TaskAccess) => Promise<void>,
  ): Promise<Task> {
    const taskId = requireUuid(id, 'taskId');
    const access = await this.deps.policy.require(viewer, taskId, min);
    if (access.projectId) await this.deps.projects.requireWritable(viewer, access.projectId, min);
    return inTransaction(scope, async (tx) => {
      if (beforeLock) await beforeLock(tx, access);
      // PESSIMISTIC_WRITE is FOR UPDATE: a concurrent change waits its turn. (LockMode 4, used
      // here before, is PESSIMISTIC_PARTIAL_WRITE, FOR UPDATE SKIP LOCKED: the task read as NOT_FOUND.)
      const t = await tx.em.findOne(Task, taskId, { lockMode: LockMode.PESSIMISTIC_WRITE });
      if (!t) throw new NotFoundError('Task', taskId);
      const before = snapshot(t);
      const changed = await apply(tx, t, access);
      if (changed === false) return t;
      if (action)
        this.deps.audit.record(tx, { action, entityType: 'Task', entityId: t.id, before, after: snapshot(t) });
      await this.publish(tx, t.id, access.projectId);
      return t;
    });
  }

  private publish(tx: Scope, taskId: string, projectId: string | null) {
    return this.deps.bus.publish(tx.em, TASK_UPDATED, { taskId, projectId } satisfies TaskEvent);
  }

  /** Every id is a task of the same project (personal tasks: a personal task) that the viewer can see. */
  private async assertSameProject(viewer: Viewer, ids: string[], projectId: string | null, field: string) {
    if (!ids.length) return;
    // Visibility matters for personal tasks: without it anyone's personal task could be made a
    // dependency by its id, and then read through Task.dependencies.
    const rows = await this.deps.db.query<{ id: string }>(
      sql`SELECT t.id FROM tasks t WHERE t.id = ANY(${ids}::uuid[]) AND t.project_id IS NOT DISTINCT FROM ${projectId}::uuid AND ${this.deps.policy.visible(viewer, 't')}`,
    );
    if (rows.length !== ids.length)
      throw BadInputError.field(field, 'every dependency must be an existing task of the same project');
  }
}

function checkEstimate(priority: TaskPriority, minutes: number | null | undefined) {
  if (priority === TaskPriority.CRITICAL && minutes != null && minutes > CRITICAL_MAX_MINUTES) {
    throw BadInputError.field(
      'estimatedMinutes',
      `a CRITICAL task is estimated at ${CRITICAL_MAX_MINUTES} minutes (24 h) at most`,
    );
  }
}
