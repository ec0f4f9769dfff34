import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import sql from 'sql-template-tag';

import type { SqlClient } from '../db/sql.js';
import type { EventBus } from '../events/bus.js';
import type { Logger } from '../shared/logger.js';

export interface JobContext {
  /** A fresh unit of work for this run. */
  em: EntityManager;
  db: SqlClient;
  bus: EventBus;
  logger: Logger;
}

export interface JobDefinition {
  /** Unique across Steward; also the lease's key. */
  name: string;
  /** A run starts at most once per interval across all instances. */
  intervalMs: number;
  /** Longest a run may hold the lease; a crashed instance's lease expires after it. Default: 5 minutes. */
  leaseMs?: number;
  run(ctx: JobContext): Promise<unknown>;
}

export interface SchedulerDeps {
  db: SqlClient;
  bus: EventBus;
  logger: Logger;
  fork(): EntityManager;
  /** Optional metrics hook, after each run this instance claimed. */
  onRun?(job: string, ok: boolean): void;
}

/**
 * Runs scheduled jobs once across instances. Every instance ticks, but a run needs the
 * job's lease row in `job_state`, claimed by one atomic upsert that succeeds only when
 * the lease is free and the last run is at least an interval old. No advisory lock is
 * held across the run, so a run survives a pooled connection being recycled, and a
 * crashed run's lease simply times out.
 * (Why not pg-boss: docs/decisions/002-scheduler-leases-in-postgresql.md.)
 */
export class Scheduler {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly running = new Set<Promise<unknown>>();
  private readonly owner = randomUUID();
  private stopped = false;

  constructor(
    private readonly deps: SchedulerDeps,
    private readonly jobs: readonly JobDefinition[],
  ) {}

  start(): void {
    for (const job of this.jobs) {
      const tick = () => {
        if (this.stopped) return;
        void this.tryRun(job, false)
          .catch(() => {}) // already logged
          .finally(() => {
            if (!this.stopped) this.timers.set(job.name, setTimeout(tick, job.intervalMs).unref());
          });
      };
      // Spread first runs so that instances started together do not all race at once.
      this.timers.set(job.name, setTimeout(tick, Math.floor(Math.random() * Math.min(job.intervalMs, 2000))).unref());
    }
  }

  /** Runs a job now (still once across instances: waits for no one, returns false if another holds it). */
  async runNow(name: string): Promise<{ ran: boolean; result?: unknown }> {
    const job = this.jobs.find((j) => j.name === name);
    if (!job) throw new Error(`no job named ${name}`);
    return this.tryRun(job, true);
  }

  private async tryRun(job: JobDefinition, force: boolean): Promise<{ ran: boolean; result?: unknown }> {
    const { db, logger } = this.deps;
    const lease = job.leaseMs ?? 300_000;
    let claimed: unknown;
    try {
      claimed = await db.one(sql`
        INSERT INTO job_state (name, locked_until, last_started_at, last_owner, runs, failures)
        VALUES (${job.name}, now() + make_interval(secs => ${lease / 1000}), now(), ${this.owner}, 0, 0)
        ON CONFLICT (name) DO UPDATE SET locked_until = EXCLUDED.locked_until, last_started_at = now(), last_owner = EXCLUDED.last_owner
        WHERE job_state.locked_until < now()
          AND (${force}::boolean OR job_state.last_finished_at IS NULL
               OR job_state.last_finished_at <= now() - make_interval(secs => ${job.intervalMs / 1000}))
        RETURNING name`);
    } catch (err) {
      logger.warn({ err, module: 'jobs', job: job.name }, 'could not claim job');
      return { ran: false };
    }
    if (!claimed) return { ran: false };

    const run = (async () => {
      let error: unknown;
      let result: unknown;
      const started = Date.now();
      try {
        result = await job.run({
          em: this.deps.fork(),
          db,
          bus: this.deps.bus,
          logger: logger.child({ job: job.name }),
        });
      } catch (err) {
        error = err;
        logger.error({ err, module: 'jobs', job: job.name }, 'job failed');
      }
      await db
        .query(
          sql`UPDATE job_state SET locked_until = now(), last_finished_at = now(), runs = runs + 1,
                     failures = failures + ${error ? 1 : 0}, last_error = ${error ? String((error as Error).message ?? error) : null}
                   WHERE name = ${job.name} AND last_owner = ${this.owner}`,
        )
        .catch((err) => logger.warn({ err, module: 'jobs', job: job.name }, 'could not release job lease'));
      logger.debug({ module: 'jobs', job: job.name, ms: Date.now() - started }, 'job ran');
      this.deps.onRun?.(job.name, !error);
      if (error) throw error;
      return result;
    })();
    this.running.add(run);
    try {
      return { ran: true, result: await run };
    } finally {
      this.running.delete(run);
    }
  }

  /** Stops ticking and waits for runs in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled([...this.running]);
  }
}
