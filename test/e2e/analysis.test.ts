import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  AddAnalysisArtifactDocument,
  AddCodeReviewResultDocument,
  AnalysisSessionDocument,
  AnalysisSessionUpdatedDocument,
  AnalysisTaskQueuedDocument,
  ClaimAnalysisTaskDocument,
  CreateAnalysisSessionDocument,
  CreateProjectDocument,
  CreateServiceTokenDocument,
  ReportAnalysisTaskDocument,
  type AnalysisTaskType,
} from '../generated/graphql.js';
import { codes, gql, ok, subscribe, wsClient } from '../support/client.js';
import { sentinel } from '../support/sentinel.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, unique, type TestUser } from '../support/users.js';
import { busListeners, until } from '../support/wait.js';

/** Service tokens must expire. */
const SOON = new Date(Date.now() + 24 * 3600_000).toISOString();

interface Env {
  s: TestServer;
  admin: TestUser;
}

async function env(settings: Record<string, string> = {}): Promise<Env> {
  const s = await startTestServer({ env: settings });
  return { s, admin: await firstAdmin(s) };
}
const worker = async ({ s, admin }: Env, name = unique('worker:static-')) =>
  (
    await ok(
      s.url,
      CreateServiceTokenDocument,
      { input: { name, serviceActor: name, expiresAt: SOON, scopes: ['read', 'write'] } },
      admin.token,
    )
  ).createServiceToken.token;
async function project({ s, admin }: Env) {
  const owner = await createUser(s, admin);
  const p = (await ok(s.url, CreateProjectDocument, { input: { name: unique('prod-') } }, owner.token)).createProject;
  return { owner, projectId: p.id as string };
}
const session = ({ s }: Env, by: string, projectId: string, types: AnalysisTaskType[]) =>
  ok(
    s.url,
    CreateAnalysisSessionDocument,
    {
      input: {
        projectId,
        name: unique('scan-'),
        input: { repo: 'git@example.com:x.git', commit: 'abc123' },
        tasks: types.map((type, i) => ({ type, payload: { n: i } })),
      },
    },
    by,
  ).then((r) => r.createAnalysisSession);
const claim = ({ s }: Env, token: string, types?: AnalysisTaskType[], projectId?: string) =>
  ok(s.url, ClaimAnalysisTaskDocument, { types, projectId }, token).then((r) => r.claimAnalysisTask);
const report = (
  { s }: Env,
  token: string,
  input: { taskId: string; leaseToken: string; result?: unknown; error?: string; retry?: boolean },
) => gql(s.url, ReportAnalysisTaskDocument, { input }, token);
const sessionOf = ({ s }: Env, viewer: TestUser, id: string) =>
  ok(s.url, AnalysisSessionDocument, { id }, viewer.token).then((r) => r.analysisSession!);

describe('the analysis queue', () => {
  let e: Env;
  beforeAll(async () => {
    e = await env();
  });
  afterAll(() => e?.s.close());

  it('hands 200 tasks to 4 concurrent workers so that each is done exactly once, and the sessions follow their tasks', async () => {
    const { owner, projectId } = await project(e);
    const types: AnalysisTaskType[] = ['STATIC', 'DYNAMIC', 'GRAPH', 'AI'];
    const listeners = busListeners(e.s);
    const ws = wsClient(e.s.wsUrl, owner.token);
    const updates = subscribe(ws, AnalysisSessionUpdatedDocument, { projectId });
    await listeners.registered(1);
    try {
      const sessions = [];
      for (let k = 0; k < 2; k++)
        sessions.push(
          await session(
            e,
            owner.token,
            projectId,
            Array.from({ length: 100 }, (_, i) => types[i % 4]!),
          ),
        );
      expect(sessions.map((x) => x.status)).toEqual(['PENDING', 'PENDING']);

      const tokens = await Promise.all([1, 2, 3, 4].map((i) => worker(e, `worker:static-${i}-${unique('')}`)));
      const done = new Map<string, string[]>();
      await Promise.all(
        tokens.map(async (token, w) => {
          for (;;) {
            const task = await claim(e, token);
            if (!task) return;
            expect(task).toMatchObject({ status: 'RUNNING', attempts: 1 });
            const r = await report(e, token, {
              taskId: task.id,
              leaseToken: task.leaseToken!,
              result: { worker: w, findings: task.id.length % 3 },
            });
            expect(r.errors).toBeUndefined();
            done.set(task.id, [...(done.get(task.id) ?? []), `w${w}`]);
          }
        }),
      );
      expect(done.size).toBe(200);
      expect([...done.values()].every((by) => by.length === 1)).toBe(true);
      expect(new Set([...done.values()].flat()).size).toBeGreaterThan(1); // the work was shared
      const rows = await e.s.sql<{ status: string; attempts: number; n: number }>(
        `SELECT status, attempts, count(*)::int AS n FROM analysis_tasks WHERE project_id = $1 GROUP BY 1, 2`,
        [projectId],
      );
      expect(rows).toEqual([{ status: 'COMPLETED', attempts: 1, n: 200 }]);
      for (const x of sessions)
        expect(await sessionOf(e, owner, x.id)).toMatchObject({ status: 'COMPLETED', completedAt: expect.any(String) });

      // Members heard each session start and finish.
      const seen: string[] = [];
      while (seen.length < 6) seen.push((await updates.next()).analysisSessionUpdated.status);
      expect(seen.filter((x) => x === 'COMPLETED')).toHaveLength(2);
      expect(seen.filter((x) => x === 'RUNNING')).toHaveLength(2);
    } finally {
      updates.dispose();
      await ws.dispose();
    }
  });

  it('lets only service tokens claim, and tells workers (not a stranger) of queued tasks', async () => {
    const { owner, projectId } = await project(e);
    expect(codes(await gql(e.s.url, ClaimAnalysisTaskDocument, {}, owner.token))).toEqual(['FORBIDDEN']);
    const token = await worker(e);
    const stranger = await createUser(e.s, e.admin);
    const listeners = busListeners(e.s);
    const ws = wsClient(e.s.wsUrl, token);
    const queued = subscribe(ws, AnalysisTaskQueuedDocument, { types: ['GRAPH'] });
    const wsStranger = wsClient(e.s.wsUrl, stranger.token);
    const sessionsOfStranger = subscribe(wsStranger, AnalysisSessionUpdatedDocument, { projectId });
    await listeners.registered(2);
    try {
      await session(e, owner.token, projectId, ['STATIC']); // not GRAPH: this worker is not told
      const x = await session(e, owner.token, projectId, ['GRAPH', 'GRAPH', 'AI']);
      expect((await queued.next()).analysisTaskQueued).toEqual({
        sessionId: x.id,
        projectId,
        types: ['GRAPH', 'AI'],
        count: 3,
      });
      await sentinel(e.s, wsStranger, stranger);
      expect(sessionsOfStranger.received).toEqual([]);
    } finally {
      queued.dispose();
      sessionsOfStranger.dispose();
      await ws.dispose();
      await wsStranger.dispose();
    }
  });

  it('requeues a task its worker failed with retry, and fails it for good without', async () => {
    const { owner, projectId } = await project(e);
    const token = await worker(e);
    const x = await session(e, owner.token, projectId, ['AI']);
    const t1 = (await claim(e, token, ['AI'], projectId))!;
    expect(
      (await report(e, token, { taskId: t1.id, leaseToken: t1.leaseToken!, error: 'model timed out', retry: true }))
        .data!.reportAnalysisTask,
    ).toMatchObject({ status: 'QUEUED', error: 'model timed out' });
    const t2 = (await claim(e, token, ['AI'], projectId))!;
    expect(t2).toMatchObject({ id: t1.id, attempts: 2 });
    expect(
      (await report(e, token, { taskId: t2.id, leaseToken: t2.leaseToken!, error: 'bad input' })).data!
        .reportAnalysisTask.status,
    ).toBe('FAILED');
    expect((await sessionOf(e, owner, x.id)).status).toBe('FAILED');
  });

  it('records artifacts and code reviews, and a job removes expired artifacts', async () => {
    const { owner, projectId } = await project(e);
    const token = await worker(e);
    const x = await session(e, owner.token, projectId, ['STATIC']);
    const t = (await claim(e, token, ['STATIC'], projectId))!;
    const sha = 'ab'.repeat(32);
    const keep = (
      await ok(
        e.s.url,
        AddAnalysisArtifactDocument,
        {
          input: {
            sessionId: x.id,
            taskId: t.id,
            type: 'sarif',
            uri: 's3://bucket/a.sarif',
            sha256: sha,
            sizeBytes: 5_000_000_000,
          },
        },
        token,
      )
    ).addAnalysisArtifact;
    expect(keep).toMatchObject({ sizeBytes: 5_000_000_000, sha256: sha });
    const soon = (
      await ok(
        e.s.url,
        AddAnalysisArtifactDocument,
        {
          input: {
            sessionId: x.id,
            type: 'trace',
            uri: 's3://bucket/t.json',
            sha256: sha,
            sizeBytes: 10,
            expiresAt: new Date(Date.now() + 3600_000).toISOString(),
          },
        },
        token,
      )
    ).addAnalysisArtifact;
    const review = (
      await ok(
        e.s.url,
        AddCodeReviewResultDocument,
        {
          input: {
            sessionId: x.id,
            taskId: t.id,
            language: 'typescript',
            score: 87.5,
            vulnerabilityCount: 1,
            issueCount: 4,
            modelUsed: 'gpt-x',
            reviewTimeMs: 1234,
            details: { top: 'sql injection' },
          },
        },
        token,
      )
    ).addCodeReviewResult;
    expect(review).toMatchObject({ language: 'typescript', score: 87.5, vulnerabilityCount: 1, issueCount: 4 });
    expect(
      codes(
        await gql(
          e.s.url,
          AddAnalysisArtifactDocument,
          { input: { sessionId: x.id, type: 'x', uri: 'u', sha256: 'nope', sizeBytes: 1 } },
          token,
        ),
      ),
    ).toEqual(['BAD_USER_INPUT']);

    await e.s.sql(`UPDATE artifacts SET expires_at = now() - interval '1 second' WHERE id = $1`, [soon.id]);
    await e.s.app.runtime.scheduler.runNow('analysis.removeExpiredArtifacts');
    const after = await sessionOf(e, owner, x.id);
    expect(after.artifacts.map((a) => a.id)).toEqual([keep.id]);
    expect(after.codeReviews).toEqual([expect.objectContaining({ id: review.id, details: { top: 'sql injection' } })]);
  });
});

describe('leases', () => {
  let e: Env;
  beforeAll(async () => {
    e = await env({ ANALYSIS_TASK_LEASE_MS: '300', ANALYSIS_TASK_MAX_ATTEMPTS: '2' });
  });
  afterAll(() => e?.s.close());

  it("offers a crashed worker's task again after its lease, and refuses the crashed worker's late report", async () => {
    const { owner, projectId } = await project(e);
    const [crashed, healthy] = [await worker(e), await worker(e)];
    const x = await session(e, owner.token, projectId, ['DYNAMIC']);
    const first = (await claim(e, crashed, ['DYNAMIC'], projectId))!;
    expect(first.attempts).toBe(1);
    expect(await claim(e, healthy, ['DYNAMIC'], projectId)).toBeNull(); // leased
    let again: Awaited<ReturnType<typeof claim>> = null;
    await until(
      async () => (again = await claim(e, healthy, ['DYNAMIC'], projectId)) !== null,
      'the lease to expire',
      5000,
    );
    expect(again).toMatchObject({ id: first.id, attempts: 2, status: 'RUNNING' });
    expect(again!.leaseToken).not.toBe(first.leaseToken);

    const late = await report(e, crashed, { taskId: first.id, leaseToken: first.leaseToken!, result: { stale: true } });
    expect(codes(late)).toEqual(['CONFLICT']);
    expect(
      (await report(e, healthy, { taskId: first.id, leaseToken: again!.leaseToken!, result: { ok: true } })).data!
        .reportAnalysisTask,
    ).toMatchObject({ status: 'COMPLETED', result: { ok: true } });
    expect((await sessionOf(e, owner, x.id)).status).toBe('COMPLETED');
  });

  it('fails a task whose every attempt ran out of lease', async () => {
    const { owner, projectId } = await project(e);
    const w = await worker(e);
    const x = await session(e, owner.token, projectId, ['GRAPH']);
    await claim(e, w, ['GRAPH'], projectId);
    await until(async () => (await claim(e, w, ['GRAPH'], projectId)) !== null, 'the second attempt', 5000);
    // Once the last lease runs out, the lease job fails the task (no attempt left to offer).
    await until(
      async () => {
        await e.s.app.runtime.scheduler.runNow('analysis.expireLeases');
        return (await sessionOf(e, owner, x.id)).status === 'FAILED';
      },
      'the lease job to fail the task',
      5000,
    );
    expect(await claim(e, w, ['GRAPH'], projectId)).toBeNull();
    const after = await sessionOf(e, owner, x.id);
    expect(after).toMatchObject({ status: 'FAILED', tasks: [{ status: 'FAILED', attempts: 2 }] });
  });
});
