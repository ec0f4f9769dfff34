import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import sql, { type Sql } from 'sql-template-tag';

import type { SqlClient } from '../../db/sql.js';
import type { EventBus } from '../../events/bus.js';
import type { EventScope } from '../../events/subscription.js';
import { conflictOnDuplicate } from '../../shared/conflict.js';
import { paginate, type Connection, type PageArgs } from '../../shared/connection.js';
import { BadInputError, NotFoundError, requireUuid } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { and, readModel } from '../../shared/read-model.js';
import { inTransaction, systemMeta, type Scope, type Viewer } from '../../shared/scope.js';
import type { AuditService } from '../audit/index.js';
import { User } from '../identity/user.entity.js';
import type { ProjectService } from '../projects/index.js';
import { ProjectRole } from '../projects/project-member.entity.js';
import type { NotificationService } from '../work/index.js';
import { NotificationPriority, NotificationType } from '../work/notification.entity.js';
import { Container, ContainerStatus } from './container.entity.js';
import { requireMove } from './container.rules.js';
import { CONTAINER_STATUS_CHANGED, type ContainerEvent } from './infrastructure.events.js';
import type {
  ContainerWhere,
  CreateContainerInput,
  ReportContainerStatusInput,
  UpdateContainerInput,
} from './infrastructure.inputs.js';

export interface ContainerLimitsConfig {
  CONTAINER_IDLE_MINUTES: number;
  CONTAINER_DEFAULT_CPU: number;
  CONTAINER_DEFAULT_MEMORY_MB: number;
  CONTAINER_MAX_CPU: number;
  CONTAINER_MAX_MEMORY_MB: number;
}

export interface ContainerDeps {
  config: ContainerLimitsConfig;
  db: SqlClient;
  bus: EventBus;
  audit: AuditService;
  projects: ProjectService;
  logger: Logger;
  notifications: Pick<NotificationService, 'notify'>;
}

/** The fewest CPU cores and MiB a container may have. */
export const MIN_CPU = 0.1;
export const MIN_MEMORY_MB = 64;

const snapshot = (c: Container) => ({
  status: c.status,
  desiredStatus: c.desiredStatus ?? null,
  cpuLimit: c.cpuLimit,
  memoryLimitMb: c.memoryLimitMb,
  runtimeId: c.runtimeId ?? null,
  previewUrl: c.previewUrl ?? null,
});

/**
 * Dev containers. Steward owns their state and rules; the runtime acts on
 * them. Members (CONTRIBUTOR+) create containers and ask for start/stop/sleep (the
 * desired status); the runtime, with a service token, reports the status it reached
 * and activity. Every move is checked against ./container.rules.ts, audited, and
 * published to the project's members after commit.
 */
export class ContainerService {
  constructor(private readonly deps: ContainerDeps) {}

  /** CPU cores and MiB within the configured bounds; BAD_USER_INPUT naming the field otherwise. */
  limits(
    cpu: number | null | undefined,
    memory: number | null | undefined,
    current?: { cpuLimit: number; memoryLimitMb: number },
  ) {
    const c = this.deps.config;
    const cpuLimit = cpu ?? current?.cpuLimit ?? c.CONTAINER_DEFAULT_CPU;
    const memoryLimitMb = memory ?? current?.memoryLimitMb ?? c.CONTAINER_DEFAULT_MEMORY_MB;
    if (!Number.isFinite(cpuLimit) || cpuLimit < MIN_CPU || cpuLimit > c.CONTAINER_MAX_CPU) {
      throw BadInputError.field('cpuLimit', `must be between ${MIN_CPU} and ${c.CONTAINER_MAX_CPU} cores`);
    }
    if (Math.round(cpuLimit * 100) !== cpuLimit * 100)
      throw BadInputError.field('cpuLimit', 'has at most two decimals');
    if (
      !Number.isInteger(memoryLimitMb) ||
      memoryLimitMb < MIN_MEMORY_MB ||
      memoryLimitMb > c.CONTAINER_MAX_MEMORY_MB
    ) {
      throw BadInputError.field(
        'memoryLimitMb',
        `must be a whole number of MiB between ${MIN_MEMORY_MB} and ${c.CONTAINER_MAX_MEMORY_MB}`,
      );
    }
    return { cpuLimit, memoryLimitMb };
  }

  async create(scope: Scope, viewer: Viewer, input: CreateContainerInput): Promise<Container> {
    const projectId = requireUuid(input.projectId, 'projectId');
    await this.deps.projects.requireWritable(viewer, projectId, ProjectRole.CONTRIBUTOR);
    const limits = this.limits(input.cpuLimit, input.memoryLimitMb);
    return conflictOnDuplicate(
      () =>
        inTransaction(scope, async (tx) => {
          const name = input.name ?? (await this.freeName(tx.em, projectId));
          const c = tx.em.create(Container, {
            project: projectId,
            name,
            image: input.image ?? null,
            ...limits,
            // The runtime creates it, then runs it.
            desiredStatus: ContainerStatus.RUNNING,
            desiredAt: new Date(),
            desiredBy: viewer.serviceActor ? null : viewer.userId,
            createdBy: viewer.serviceActor ? null : viewer.userId,
          });
          await tx.em.flush();
          this.deps.audit.record(tx, {
            action: 'container.create',
            entityType: 'Container',
            entityId: c.id,
            after: { projectId, name, image: c.image ?? null, ...snapshot(c) },
          });
          await this.publish(tx, c);
          return c;
        }),
      input.name
        ? `The project already has a container named ${input.name}`
        : 'Another container was named at the same moment; try again',
    );
  }

  private async freeName(em: EntityManager, projectId: string): Promise<string> {
    // (No question mark in here: MikroORM's execute reads every ? as a parameter.)
    const rows = await em.execute<{ name: string }[]>(
      `SELECT name FROM containers WHERE project_id = ? AND (name = 'dev' OR name ~ '^dev-[0-9]+$')`,
      [projectId],
    );
    const taken = new Set(rows.map((r) => r.name));
    if (!taken.has('dev')) return 'dev';
    for (let i = 2; ; i++) if (!taken.has(`dev-${i}`)) return `dev-${i}`;
  }

  async update(scope: Scope, viewer: Viewer, input: UpdateContainerInput): Promise<Container> {
    return this.change(scope, viewer, input.id, 'container.update', (c) => {
      Object.assign(c, this.limits(input.cpuLimit, input.memoryLimitMb, c));
    });
  }

  /**
   * A member's request: start (RUNNING), stop (STOPPED) or sleep (SLEEPING), recorded as
   * the desired status. It must be a move the container can make from where it is; a
   * request for the status it already has clears any other pending request.
   */
  async request(
    scope: Scope,
    viewer: Viewer,
    id: string,
    desired: ContainerStatus.RUNNING | ContainerStatus.STOPPED | ContainerStatus.SLEEPING,
  ): Promise<Container> {
    const verb = {
      [ContainerStatus.RUNNING]: 'start',
      [ContainerStatus.STOPPED]: 'stop',
      [ContainerStatus.SLEEPING]: 'sleep',
    }[desired];
    return this.change(scope, viewer, id, `container.${verb}`, (c, tx) => {
      requireMove(c.status, desired);
      c.desiredStatus = c.status === desired ? null : desired;
      c.desiredAt = new Date();
      c.desiredBy = viewer.serviceActor ? null : tx.em.getReference(User, viewer.userId, { wrapped: true });
    });
  }

  /** The runtime reports the status it reached (and its id, preview URL or error). */
  async report(scope: Scope, viewer: Viewer, input: ReportContainerStatusInput): Promise<Container> {
    return this.change(
      scope,
      viewer,
      input.id,
      'container.status',
      (c) => {
        requireMove(c.status, input.status);
        if (c.status !== input.status) {
          c.status = input.status;
          c.statusChangedAt = new Date();
          c.statusMessage = input.message ?? null;
        } else if (input.message !== undefined) {
          c.statusMessage = input.message;
        }
        if (c.desiredStatus === input.status) c.desiredStatus = null;
        if (input.status === ContainerStatus.RUNNING) c.lastActiveAt = new Date();
        if (input.runtimeId) c.runtimeId = input.runtimeId;
        if (input.previewUrl) c.previewUrl = input.previewUrl;
      },
      { writable: false, quietUnlessChanged: true },
    );
  }

  /**
   * Activity in the container (the runtime saw a request, a shell, a build): keeps it
   * from the idle job; returns its id. Not audited: telemetry, not a change of state.
   */
  async touch(viewer: Viewer, id: string): Promise<string> {
    const containerId = requireUuid(id);
    const row = await this.deps.db.one<{ project_id: string }>(
      sql`SELECT project_id FROM containers WHERE id = ${containerId}::uuid`,
    );
    if (!row || !(await this.deps.projects.policy.canRead(viewer, row.project_id)))
      throw new NotFoundError('Container', containerId);
    await this.deps.db.query(sql`UPDATE containers SET last_active_at = now() WHERE id = ${containerId}::uuid`);
    return containerId;
  }

  private async change(
    scope: Scope,
    viewer: Viewer,
    id: string,
    action: string,
    apply: (c: Container, tx: Scope) => void,
    opts: { writable?: boolean; quietUnlessChanged?: boolean } = {},
  ): Promise<Container> {
    const containerId = requireUuid(id);
    const row = await this.deps.db.one<{ project_id: string }>(
      sql`SELECT project_id FROM containers WHERE id = ${containerId}::uuid`,
    );
    if (!row || !(await this.deps.projects.policy.canRead(viewer, row.project_id)))
      throw new NotFoundError('Container', containerId);
    // Members change containers of ACTIVE projects only; the runtime reports whatever happens.
    if (opts.writable === false)
      await this.deps.projects.policy.require(viewer, row.project_id, ProjectRole.MAINTAINER);
    else await this.deps.projects.requireWritable(viewer, row.project_id, ProjectRole.CONTRIBUTOR);
    return inTransaction(scope, async (tx) => {
      const c = await tx.em.findOneOrFail(Container, containerId, { lockMode: LockMode.PESSIMISTIC_WRITE });
      const before = snapshot(c);
      apply(c, tx);
      const after = snapshot(c);
      if (opts.quietUnlessChanged && JSON.stringify(before) === JSON.stringify(after)) return c;
      this.deps.audit.record(tx, { action, entityType: 'Container', entityId: c.id, before, after });
      if (before.status !== after.status || before.desiredStatus !== after.desiredStatus) await this.publish(tx, c);
      if (after.status === ContainerStatus.ERROR && before.status !== ContainerStatus.ERROR)
        await this.notifyError(tx, c);
      return c;
    });
  }

  /** A container that failed is told to the people who run its project (OWNER, MAINTAINERs, admins). */
  private async notifyError(tx: Scope, c: Container) {
    const people = await this.deps.projects.policy.deciders(c.project.id);
    await this.deps.notifications.notify(
      tx,
      people.map((userId) => ({
        userId,
        type: NotificationType.ERROR,
        priority: NotificationPriority.HIGH,
        title: `Container ${c.name} failed`,
        message: c.statusMessage ?? null,
        data: { containerId: c.id, projectId: c.project.id },
      })),
    );
  }

  private publish(tx: Scope, c: Container) {
    const e: ContainerEvent = {
      containerId: c.id,
      projectId: c.project.id,
      status: c.status,
      desiredStatus: c.desiredStatus ?? null,
    };
    return this.deps.bus.publish(tx.em, CONTAINER_STATUS_CHANGED, e);
  }

  /**
   * RUNNING containers without activity (or a status change) for CONTAINER_IDLE_MINUTES
   * go to SLEEPING, which is also their desired status so that the runtime pauses them.
   * Rows being changed right now are skipped (SKIP LOCKED) and looked at next time.
   */
  async sleepIdle(em: EntityManager): Promise<number> {
    const minutes = this.deps.config.CONTAINER_IDLE_MINUTES;
    const scope: Scope = { em, viewer: null, meta: systemMeta('infrastructure.sleepIdleContainers') };
    return inTransaction(scope, async (tx) => {
      const rows = await tx.em.execute<{ id: string; project_id: string; last_active_at: Date | null }[]>(
        `UPDATE containers c SET status = 'SLEEPING', desired_status = 'SLEEPING', desired_at = now(), desired_by_id = NULL,
                status_changed_at = now(), status_message = ?, updated_at = now()
          WHERE c.id IN (SELECT id FROM containers WHERE status = 'RUNNING'
                           AND coalesce(last_active_at, status_changed_at) < now() - make_interval(mins => ?)
                         FOR UPDATE SKIP LOCKED)
          RETURNING c.id, c.project_id, c.last_active_at`,
        [`idle for ${minutes} minutes`, minutes],
      );
      for (const r of rows) {
        this.deps.audit.record(tx, {
          action: 'container.sleepIdle',
          entityType: 'Container',
          entityId: r.id,
          actorId: null,
          actorLabel: 'job:infrastructure.sleepIdleContainers',
          before: { status: ContainerStatus.RUNNING, lastActiveAt: r.last_active_at },
          after: { status: ContainerStatus.SLEEPING, desiredStatus: ContainerStatus.SLEEPING },
        });
        await this.deps.bus.publish(tx.em, CONTAINER_STATUS_CHANGED, {
          containerId: r.id,
          projectId: r.project_id,
          status: ContainerStatus.SLEEPING,
          desiredStatus: ContainerStatus.SLEEPING,
        } satisfies ContainerEvent);
      }
      return rows.length;
    });
  }

  /** SQL condition: containers (aliased `t`) the viewer may see: those of projects it may see. */
  visible(viewer: Viewer): Sql {
    return this.deps.projects.policy.visible(viewer, 't.project_id');
  }

  list(
    viewer: Viewer,
    fields: Iterable<string>,
    where: ContainerWhere,
    page: PageArgs,
  ): Promise<Connection<Record<string, unknown>>> {
    return paginate(
      this.deps.db,
      {
        model: readModel(Container),
        fields,
        required: ['project'],
        where: and([
          this.visible(viewer),
          where.projectId ? sql`t.project_id = ${where.projectId}::uuid` : null,
          where.status?.length ? sql`t.status = ANY(${where.status}::container_status[])` : null,
          where.pendingAction ? sql`t.desired_status IS NOT NULL` : null,
        ]),
        sort: { property: 'id', direction: 'ASC', type: 'uuid' },
      },
      page,
    );
  }

  /** Subscription filter: the project's members (and admins, and runtimes) hear of its containers. */
  hears = (viewer: Viewer, e: ContainerEvent, scope?: EventScope): Promise<boolean> =>
    this.deps.projects.policy.canRead(viewer, e.projectId, scope);
}
