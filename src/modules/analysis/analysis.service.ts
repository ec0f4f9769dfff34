import type { EntityManager } from '@mikro-orm/postgresql';
import sql from 'sql-template-tag';

import type { Config } from '../../config.js';
import type { SqlClient } from '../../db/sql.js';
import type { EventBus } from '../../events/bus.js';
import type { EventScope } from '../../events/subscription.js';
import type { JobDefinition } from '../../jobs/scheduler.js';
import { NEWEST_FIRST, paginate, type PageArgs } from '../../shared/connection.js';
import { BadInputError, ConflictError, NotFoundError, requireUuid } from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import { and, readModel } from '../../shared/read-model.js';
import { inTransaction, systemMeta, type Scope, type Viewer } from '../../shared/scope.js';
import type { AuditService } from '../audit/index.js';
import type { ProjectService } from '../projects/index.js';
import { ProjectRole } from '../projects/project-member.entity.js';
import {
  AnalysisSession,
  AnalysisSessionStatus,
  AnalysisTask,
  AnalysisTaskStatus,
  AnalysisTaskType,
  Artifact,
  CodeReviewResult,
} from './analysis.entity.js';
import {
  ANALYSIS_SESSION_UPDATED,
  ANALYSIS_TASK_QUEUED,
  type AnalysisSessionEvent,
  type AnalysisTaskQueuedEvent,
} from './analysis.events.js';

export interface AnalysisDeps {
  config: Pick<Config, 'ANALYSIS_TASK_LEASE_MS' | 'ANALYSIS_TASK_MAX_ATTEMPTS' | 'JOB_TICK_MS'>;
  db: SqlClient;
  bus: EventBus;
  audit: AuditService;
  projects: ProjectService;
}

export const MAX_TASKS_PER_SESSION = 1000;

/**
 * Production analysis: sessions of tasks that external workers, with service
 * tokens, claim from a queue. A claim is one UPDATE of the oldest claimable task picked
 * with FOR UPDATE SKIP LOCKED, so concurrent workers never get the same task; it holds
 * a lease (ANALYSIS_TASK_LEASE_MS) and a fresh lease token. A task whose lease ran out is
 * claimable again (its worker is presumed dead) until it has been claimed
 * ANALYSIS_TASK_MAX_ATTEMPTS times; then the lease job FAILs it. Reports carry the lease
 * token, so only the current holder's report counts: each task completes exactly once.
 */
export class AnalysisService {
  constructor(private readonly deps: AnalysisDeps) {}

  async createSession(
    scope: Scope,
    viewer: Viewer,
    input: {
      projectId: string;
      name: string;
      input?: Record<string, unknown> | null;
      tasks: { type: AnalysisTaskType; payload?: Record<string, unknown> | null }[];
    },
  ): Promise<AnalysisSession> {
    const projectId = requireUuid(input.projectId, 'projectId');
    if (!input.tasks.length || input.tasks.length > MAX_TASKS_PER_SESSION)
      throw BadInputError.field('tasks', `give 1 to ${MAX_TASKS_PER_SESSION} tasks`);
    await this.deps.projects.requireWritable(viewer, projectId, ProjectRole.CONTRIBUTOR);
    return inTransaction(scope, async (tx) => {
      const session = tx.em.create(AnalysisSession, {
        project: projectId,
        user: viewer.serviceActor ? null : viewer.userId,
        name: input.name,
        input: input.input ?? {},
      });
      await tx.em.flush();
      // One statement for all tasks (knex would expand JS arrays into lists: the rows travel as one JSON document).
      const rows = input.tasks.map((t) => ({ id: newId(), type: t.type, payload: t.payload ?? {} }));
      await tx.em.execute(
        `INSERT INTO analysis_tasks (id, session_id, project_id, type, payload, max_attempts)
         SELECT (x->>'id')::uuid, ?, ?, (x->>'type')::analysis_task_type, x->'payload', ? FROM jsonb_array_elements(?::jsonb) AS x`,
        [session.id, projectId, this.deps.config.ANALYSIS_TASK_MAX_ATTEMPTS, JSON.stringify(rows)],
      );
      this.deps.audit.record(tx, {
        action: 'analysisSession.create',
        entityType: 'AnalysisSession',
        entityId: session.id,
        after: { projectId, name: input.name, tasks: input.tasks.length },
      });
      await this.queued(
        tx,
        session.id,
        projectId,
        input.tasks.map((t) => t.type),
      );
      await this.deps.bus.publish(tx.em, ANALYSIS_SESSION_UPDATED, {
        sessionId: session.id,
        projectId,
        status: session.status,
      } satisfies AnalysisSessionEvent);
      return session;
    });
  }

  private async queued(tx: Scope, sessionId: string, projectId: string, types: AnalysisTaskType[]) {
    await this.deps.bus.publish(tx.em, ANALYSIS_TASK_QUEUED, {
      sessionId,
      projectId,
      types: [...new Set(types)],
      count: types.length,
    } satisfies AnalysisTaskQueuedEvent);
  }

  /** The oldest claimable task of the given types (all types when empty), optionally of one project, or null when there is none. */
  async claim(
    scope: Scope,
    viewer: Viewer,
    types: AnalysisTaskType[],
    projectId?: string | null,
  ): Promise<AnalysisTask | null> {
    const onlyProject = projectId ? requireUuid(projectId, 'projectId') : null;
    const worker = viewer.serviceActor ?? `user:${viewer.userId}`;
    const wanted = types.length ? types : Object.values(AnalysisTaskType);
    return inTransaction(scope, async (tx) => {
      const [row] = await tx.em.execute<{ id: string; session_id: string; attempts: number }[]>(
        `UPDATE analysis_tasks t SET status = 'RUNNING', attempts = t.attempts + 1, lease_token = gen_random_uuid(),
                lease_expires_at = clock_timestamp() + (? * interval '1 millisecond'), claimed_by = ?, started_at = clock_timestamp(), updated_at = now()
          WHERE t.id = (
            SELECT c.id FROM analysis_tasks c JOIN projects p ON p.id = c.project_id
             WHERE c.type = ANY(?::analysis_task_type[]) AND p.status <> 'DELETED' AND (?::uuid IS NULL OR c.project_id = ?::uuid)
               AND (c.status = 'QUEUED' OR (c.status = 'RUNNING' AND c.lease_expires_at < clock_timestamp()))
               AND c.attempts < c.max_attempts
             ORDER BY c.id
             FOR UPDATE OF c SKIP LOCKED LIMIT 1)
          RETURNING t.id, t.session_id, t.attempts`,
        [this.deps.config.ANALYSIS_TASK_LEASE_MS, worker, `{${wanted.join(',')}}`, onlyProject, onlyProject],
      );
      if (!row) return null;
      this.deps.audit.record(tx, {
        action: 'analysisTask.claim',
        entityType: 'AnalysisTask',
        entityId: row.id,
        after: { worker, attempt: row.attempts },
      });
      await this.followTasks(tx, row.session_id);
      return tx.em.findOneOrFail(AnalysisTask, row.id, { refresh: true });
    });
  }

  /**
   * The lease holder's report: COMPLETED with a result, or FAILED with an error (retried
   * while attempts remain when `retry`). A stale lease token is CONFLICT.
   */
  async report(
    scope: Scope,
    viewer: Viewer,
    input: { taskId: string; leaseToken: string; result?: unknown; error?: string | null; retry?: boolean | null },
  ): Promise<AnalysisTask> {
    const taskId = requireUuid(input.taskId, 'taskId');
    const failed = input.error != null;
    return inTransaction(scope, async (tx) => {
      const [row] = await tx.em.execute<
        { id: string; session_id: string; project_id: string; type: AnalysisTaskType; status: AnalysisTaskStatus }[]
      >(
        `UPDATE analysis_tasks SET
            status = (CASE WHEN ? AND (? AND attempts < max_attempts) THEN 'QUEUED' WHEN ? THEN 'FAILED' ELSE 'COMPLETED' END)::analysis_task_status,
            result = ?::jsonb, error = ?, lease_token = NULL, lease_expires_at = NULL, updated_at = now(),
            completed_at = CASE WHEN ? AND (? AND attempts < max_attempts) THEN NULL ELSE clock_timestamp() END,
            duration_ms = (extract(epoch FROM clock_timestamp() - started_at) * 1000)::int
          WHERE id = ? AND status = 'RUNNING' AND lease_token = ?
          RETURNING id, session_id, project_id, type, status`,
        [
          failed,
          !!input.retry,
          failed,
          input.result === undefined ? null : JSON.stringify(input.result),
          input.error ?? null,
          failed,
          !!input.retry,
          taskId,
          requireUuid(input.leaseToken, 'leaseToken'),
        ],
      );
      if (!row) {
        const [now] = await tx.em.execute<{ status: string; project_id: string }[]>(
          `SELECT status, project_id FROM analysis_tasks WHERE id = ?`,
          [taskId],
        );
        if (!now || !(await this.deps.projects.policy.canRead(viewer, now.project_id)))
          throw new NotFoundError('AnalysisTask', taskId);
        throw new ConflictError(
          `This task's lease is no longer yours (the task is ${now.status}); its result was not recorded`,
          { status: now.status },
        );
      }
      this.deps.audit.record(tx, {
        action: `analysisTask.${row.status.toLowerCase()}`,
        entityType: 'AnalysisTask',
        entityId: taskId,
        after: { status: row.status, error: input.error ?? null },
      });
      if (row.status === AnalysisTaskStatus.QUEUED) await this.queued(tx, row.session_id, row.project_id, [row.type]);
      await this.followTasks(tx, row.session_id);
      return tx.em.findOneOrFail(AnalysisTask, taskId, { refresh: true });
    });
  }

  /** The session's status from its tasks' (the session row is locked, so concurrent reports settle one at a time). */
  private async followTasks(tx: Scope, sessionId: string): Promise<void> {
    const [s] = await tx.em.execute<{ status: AnalysisSessionStatus; project_id: string }[]>(
      `SELECT status, project_id FROM analysis_sessions WHERE id = ? FOR UPDATE`,
      [sessionId],
    );
    const [c] = await tx.em.execute<{ queued: number; running: number; completed: number; failed: number }[]>(
      `SELECT count(*) FILTER (WHERE status = 'QUEUED')::int AS queued, count(*) FILTER (WHERE status = 'RUNNING')::int AS running,
              count(*) FILTER (WHERE status = 'COMPLETED')::int AS completed, count(*) FILTER (WHERE status = 'FAILED')::int AS failed
         FROM analysis_tasks WHERE session_id = ?`,
      [sessionId],
    );
    const next = sessionStatus(c!);
    if (!s || next === s.status) return;
    await tx.em.execute(
      `UPDATE analysis_sessions SET status = ?::analysis_session_status, completed_at = ?, updated_at = now() WHERE id = ?`,
      [
        next,
        next === AnalysisSessionStatus.COMPLETED || next === AnalysisSessionStatus.FAILED ? new Date() : null,
        sessionId,
      ],
    );
    this.deps.audit.record(tx, {
      action: 'analysisSession.status',
      entityType: 'AnalysisSession',
      entityId: sessionId,
      before: { status: s.status },
      after: { status: next },
    });
    await this.deps.bus.publish(tx.em, ANALYSIS_SESSION_UPDATED, {
      sessionId,
      projectId: s.project_id,
      status: next,
    } satisfies AnalysisSessionEvent);
  }

  /** Job: running tasks whose lease ran out with no attempt left are FAILED; those with attempts left are announced again. */
  async expireLeases(em: EntityManager): Promise<number> {
    const scope: Scope = { em, viewer: null, meta: systemMeta('analysis.expireLeases') };
    return inTransaction(scope, async (tx) => {
      const dead = await tx.em.execute<{ id: string; session_id: string }[]>(
        `UPDATE analysis_tasks SET status = 'FAILED', error = 'lease expired after the last attempt', lease_token = NULL, completed_at = now(), updated_at = now()
          WHERE status = 'RUNNING' AND lease_expires_at < now() AND attempts >= max_attempts RETURNING id, session_id`,
      );
      for (const t of dead)
        this.deps.audit.record(tx, {
          action: 'analysisTask.failed',
          entityType: 'AnalysisTask',
          entityId: t.id,
          actorLabel: 'job:analysis.expireLeases',
          after: { reason: 'lease expired after the last attempt' },
        });
      for (const sessionId of new Set(dead.map((t) => t.session_id))) await this.followTasks(tx, sessionId);
      const retry = await tx.em.execute<
        { session_id: string; project_id: string; types: AnalysisTaskType[]; n: number }[]
      >(
        `SELECT session_id, project_id, array_agg(DISTINCT type::text) AS types, count(*)::int AS n FROM analysis_tasks
          WHERE status = 'RUNNING' AND lease_expires_at < now() AND attempts < max_attempts GROUP BY 1, 2`,
      );
      for (const r of retry)
        await this.deps.bus.publish(tx.em, ANALYSIS_TASK_QUEUED, {
          sessionId: r.session_id,
          projectId: r.project_id,
          types: r.types,
          count: r.n,
        } satisfies AnalysisTaskQueuedEvent);
      return dead.length;
    });
  }

  private async sessionOf(viewer: Viewer, id: string, min: ProjectRole): Promise<string> {
    const sessionId = requireUuid(id, 'sessionId');
    const row = await this.deps.db.one<{ project_id: string }>(
      sql`SELECT project_id FROM analysis_sessions WHERE id = ${sessionId}::uuid`,
    );
    if (!row || !(await this.deps.projects.policy.canRead(viewer, row.project_id)))
      throw new NotFoundError('AnalysisSession', sessionId);
    await this.deps.projects.requireWritable(viewer, row.project_id, min);
    return row.project_id;
  }

  private async taskInSession(tx: Scope, sessionId: string, taskId: string | null | undefined) {
    if (!taskId) return null;
    const [t] = await tx.em.execute(`SELECT 1 FROM analysis_tasks WHERE id = ? AND session_id = ?`, [
      requireUuid(taskId, 'taskId'),
      sessionId,
    ]);
    if (!t) throw BadInputError.field('taskId', 'is not a task of this session');
    return taskId;
  }

  async addArtifact(
    scope: Scope,
    viewer: Viewer,
    input: {
      sessionId: string;
      taskId?: string | null;
      type: string;
      uri: string;
      sha256: string;
      sizeBytes: number;
      expiresAt?: Date | null;
    },
  ): Promise<Artifact> {
    await this.sessionOf(viewer, input.sessionId, ProjectRole.CONTRIBUTOR);
    return inTransaction(scope, async (tx) => {
      const task = await this.taskInSession(tx, input.sessionId, input.taskId);
      const a = tx.em.create(Artifact, {
        session: input.sessionId,
        task,
        type: input.type,
        uri: input.uri,
        sha256: input.sha256.toLowerCase(),
        sizeBytes: input.sizeBytes,
        expiresAt: input.expiresAt ?? null,
      });
      await tx.em.flush();
      this.deps.audit.record(tx, {
        action: 'artifact.add',
        entityType: 'Artifact',
        entityId: a.id,
        after: {
          sessionId: input.sessionId,
          taskId: task,
          type: a.type,
          uri: a.uri,
          sha256: a.sha256,
          sizeBytes: a.sizeBytes,
        },
      });
      return a;
    });
  }

  async addCodeReview(
    scope: Scope,
    viewer: Viewer,
    input: {
      sessionId: string;
      taskId?: string | null;
      language: string;
      score: number;
      vulnerabilityCount: number;
      issueCount: number;
      modelUsed: string;
      reviewTimeMs: number;
      details?: unknown;
    },
  ): Promise<CodeReviewResult> {
    await this.sessionOf(viewer, input.sessionId, ProjectRole.CONTRIBUTOR);
    return inTransaction(scope, async (tx) => {
      const task = await this.taskInSession(tx, input.sessionId, input.taskId);
      const r = tx.em.create(CodeReviewResult, {
        ...input,
        session: input.sessionId,
        task,
        details: input.details ?? null,
      });
      await tx.em.flush();
      this.deps.audit.record(tx, {
        action: 'codeReview.add',
        entityType: 'CodeReviewResult',
        entityId: r.id,
        after: {
          sessionId: input.sessionId,
          language: r.language,
          score: r.score,
          vulnerabilityCount: r.vulnerabilityCount,
          issueCount: r.issueCount,
        },
      });
      return r;
    });
  }

  /** Job: forgets artifacts past their expiry (the files themselves live in the worker's store). */
  async removeExpiredArtifacts(em: EntityManager): Promise<number> {
    const scope: Scope = { em, viewer: null, meta: systemMeta('analysis.removeExpiredArtifacts') };
    return inTransaction(scope, async (tx) => {
      const rows = await tx.em.execute<{ id: string; uri: string }[]>(
        `DELETE FROM artifacts WHERE expires_at <= now() RETURNING id, uri`,
      );
      for (const r of rows)
        this.deps.audit.record(tx, {
          action: 'artifact.expire',
          entityType: 'Artifact',
          entityId: r.id,
          actorLabel: 'job:analysis.removeExpiredArtifacts',
          before: { uri: r.uri },
        });
      return rows.length;
    });
  }

  sessions(viewer: Viewer, projectId: string, fields: Iterable<string>, page: PageArgs) {
    return paginate(
      this.deps.db,
      {
        model: readModel(AnalysisSession),
        fields,
        where: and([sql`t.project_id = ${requireUuid(projectId, 'projectId')}::uuid`, this.visible(viewer)]),
        sort: NEWEST_FIRST,
      },
      page,
    );
  }

  visible(viewer: Viewer) {
    return this.deps.projects.policy.visible(viewer, 't.project_id');
  }

  hearsSession = (viewer: Viewer, e: AnalysisSessionEvent, scope?: EventScope) =>
    this.deps.projects.policy.canRead(viewer, e.projectId, scope);

  jobs(): JobDefinition[] {
    return [
      {
        name: 'analysis.expireLeases',
        intervalMs: Math.min(this.deps.config.JOB_TICK_MS, Math.max(100, this.deps.config.ANALYSIS_TASK_LEASE_MS)),
        run: ({ em }) => this.expireLeases(em),
      },
      { name: 'analysis.removeExpiredArtifacts', intervalMs: 60_000, run: ({ em }) => this.removeExpiredArtifacts(em) },
    ];
  }
}

export function sessionStatus(c: {
  queued: number;
  running: number;
  completed: number;
  failed: number;
}): AnalysisSessionStatus {
  if (c.queued === 0 && c.running === 0)
    return c.failed ? AnalysisSessionStatus.FAILED : AnalysisSessionStatus.COMPLETED;
  if (c.running === 0 && c.completed === 0 && c.failed === 0) return AnalysisSessionStatus.PENDING;
  return AnalysisSessionStatus.RUNNING;
}
