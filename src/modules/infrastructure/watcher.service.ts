import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import sql from 'sql-template-tag';

import type { SqlClient } from '../../db/sql.js';
import { conflictOnDuplicate } from '../../shared/conflict.js';
import { paginate, type Connection, type PageArgs } from '../../shared/connection.js';
import { NotFoundError, requireUuid } from '../../shared/errors.js';
import { and, readModel } from '../../shared/read-model.js';
import { inTransaction, type Scope, type Viewer } from '../../shared/scope.js';
import type { AuditService } from '../audit/index.js';
import type {
  CreateWatcherInput,
  ReportWatcherRunInput,
  UpdateWatcherInput,
  WatcherWhere,
} from './infrastructure.inputs.js';
import { Watcher, WatcherRun } from './watcher.entity.js';

export interface WatcherDeps {
  db: SqlClient;
  audit: AuditService;
}

const snapshot = (w: Watcher) => ({ name: w.name, watcherType: w.watcherType, config: w.config, isActive: w.isActive });

/**
 * Watchers, kept by admins; the watcher processes report each run with a
 * service token, which records the run and moves the watcher's last run, last error,
 * error count and consecutive errors.
 */
export class WatcherService {
  constructor(private readonly deps: WatcherDeps) {}

  async create(scope: Scope, viewer: Viewer, input: CreateWatcherInput): Promise<Watcher> {
    return conflictOnDuplicate(
      () =>
        inTransaction(scope, async (tx) => {
          const w = tx.em.create(Watcher, {
            name: input.name.trim(),
            watcherType: input.watcherType.trim(),
            config: input.config ?? {},
            isActive: input.isActive ?? true,
            createdBy: viewer.serviceActor ? null : viewer.userId,
          });
          await tx.em.flush();
          this.deps.audit.record(tx, {
            action: 'watcher.create',
            entityType: 'Watcher',
            entityId: w.id,
            after: snapshot(w),
          });
          return w;
        }),
      `A watcher named ${input.name} exists already`,
    );
  }

  async update(scope: Scope, input: UpdateWatcherInput): Promise<Watcher> {
    return conflictOnDuplicate(
      () =>
        inTransaction(scope, async (tx) => {
          const w = await this.locked(tx.em, requireUuid(input.id));
          const before = snapshot(w);
          if (input.name != null) w.name = input.name.trim();
          if (input.config != null) w.config = input.config;
          if (input.isActive != null) w.isActive = input.isActive;
          await tx.em.flush();
          this.deps.audit.record(tx, {
            action: 'watcher.update',
            entityType: 'Watcher',
            entityId: w.id,
            before,
            after: snapshot(w),
          });
          return w;
        }),
      `A watcher named ${input.name} exists already`,
    );
  }

  async remove(scope: Scope, id: string): Promise<boolean> {
    return inTransaction(scope, async (tx) => {
      const w = await this.locked(tx.em, requireUuid(id));
      this.deps.audit.record(tx, {
        action: 'watcher.delete',
        entityType: 'Watcher',
        entityId: w.id,
        before: snapshot(w),
      });
      tx.em.remove(w);
      return true;
    });
  }

  /** A watcher process reports a run (a disabled watcher's last run is recorded all the same). */
  async reportRun(scope: Scope, viewer: Viewer, input: ReportWatcherRunInput): Promise<WatcherRun> {
    return inTransaction(scope, async (tx) => {
      const w = await this.locked(tx.em, requireUuid(input.watcherId, 'watcherId'));
      const now = new Date();
      const run = tx.em.create(WatcherRun, {
        watcher: w,
        ok: input.ok,
        error: input.ok ? null : (input.error ?? 'the run failed'),
        itemsProcessed: input.itemsProcessed ?? null,
        durationMs: input.durationMs ?? null,
        details: input.details ?? null,
        reportedBy: viewer.serviceActor ?? `user:${viewer.userId}`,
      });
      w.lastRunAt = now;
      w.runCount += 1;
      if (input.ok) {
        w.lastSuccessAt = now;
        w.consecutiveErrors = 0;
      } else {
        w.lastError = run.error ?? null;
        w.lastErrorAt = now;
        w.errorCount += 1;
        w.consecutiveErrors += 1;
      }
      await tx.em.flush();
      this.deps.audit.record(tx, {
        action: 'watcher.run',
        entityType: 'Watcher',
        entityId: w.id,
        outcome: input.ok ? 'SUCCESS' : 'FAILURE',
        after: {
          runId: run.id,
          ok: input.ok,
          error: run.error ?? null,
          itemsProcessed: run.itemsProcessed ?? null,
          errorCount: w.errorCount,
          consecutiveErrors: w.consecutiveErrors,
        },
      });
      return run;
    });
  }

  list(fields: Iterable<string>, where: WatcherWhere, page: PageArgs): Promise<Connection<Record<string, unknown>>> {
    return paginate(
      this.deps.db,
      {
        model: readModel(Watcher),
        fields,
        where: and([
          where.isActive != null ? sql`t.is_active = ${where.isActive}` : null,
          where.watcherType ? sql`t.watcher_type = ${where.watcherType}` : null,
          where.failing ? sql`t.consecutive_errors > 0` : null,
        ]),
        sort: { property: 'id', direction: 'ASC', type: 'uuid' },
      },
      page,
    );
  }

  private async locked(em: EntityManager, id: string): Promise<Watcher> {
    const w = await em.findOne(Watcher, id, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!w) throw new NotFoundError('Watcher', id);
    return w;
  }
}
