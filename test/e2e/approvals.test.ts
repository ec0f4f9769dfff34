import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  ApprovalDecidedDocument,
  ApprovalDocument,
  ApprovalRequestedDocument,
  ApprovalsDocument,
  ApproveApprovalDocument,
  CreateServiceTokenDocument,
  RejectApprovalDocument,
  RequestApprovalDocument,
  type ApprovalWhere,
  type ProjectRole,
  type RequestApprovalInput,
  type Role,
} from '../generated/graphql.js';
import { codes, gql, ok, subscribe, wsClient, type Subscription } from '../support/client.js';
import { team as makeTeam } from '../support/projects.js';
import { sentinel } from '../support/sentinel.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, unique, type TestUser } from '../support/users.js';
import { busListeners } from '../support/wait.js';

/** Service tokens must expire. */
const SOON = new Date(Date.now() + 24 * 3600_000).toISOString();

let s: TestServer;
let admin: TestUser;
beforeAll(async () => {
  s = await startTestServer();
  admin = await firstAdmin(s);
});
afterAll(() => s?.close());

const user = (role: Role = 'USER') => createUser(s, admin, role);
const team = (...roles: ProjectRole[]) => makeTeam(s, admin, roles, 'Deploy to production');
const request = (by: TestUser | string, input: RequestApprovalInput) =>
  gql(s.url, RequestApprovalDocument, { input }, typeof by === 'string' ? by : by.token);
const requested = async (by: TestUser | string, input: RequestApprovalInput) => {
  const r = await request(by, input);
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.requestApproval;
};
const approve = (by: TestUser, id: string, notes?: string) =>
  gql(s.url, ApproveApprovalDocument, { input: { id, notes } }, by.token);
const reject = (by: TestUser, id: string, notes?: string) =>
  gql(s.url, RejectApprovalDocument, { input: { id, notes } }, by.token);
const approvalOf = async (viewer: TestUser, id: string) =>
  (await ok(s.url, ApprovalDocument, { id }, viewer.token)).approval;
const listed = async (viewer: TestUser, where: ApprovalWhere) =>
  (await ok(s.url, ApprovalsDocument, { first: 100, where }, viewer.token)).approvals.edges
    .map((e) => e.node.id)
    .sort();
const expireNow = (id: string) =>
  s.sql(`UPDATE approvals SET expires_at = now() - interval '1 second' WHERE id = $1`, [id]);
const notified = (userId: string, approvalId: string) =>
  s
    .sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM notifications WHERE user_id = $1 AND data->>'approvalId' = $2`,
      [userId, approvalId],
    )
    .then((r) => r[0]!.n);

describe('requesting and deciding approvals', () => {
  it('lets a contributor request approval on a task, and the owner approve it with notes', async () => {
    const {
      owner,
      project,
      task,
      members: [dev, maintainer],
    } = await team('CONTRIBUTOR', 'MAINTAINER');
    const a = await requested(dev!, {
      taskId: task.id,
      actionType: 'deploy',
      details: { env: 'production', version: '1.4.2' },
    });
    expect(a).toMatchObject({
      status: 'PENDING',
      actionType: 'deploy',
      details: { env: 'production', version: '1.4.2' },
      requestedBy: { id: dev!.id },
      requestedByActor: null,
      decidedBy: null,
      task: { id: task.id },
      project: { id: project.id }, // implied by the task
    });
    const ttl = Date.parse(a.expiresAt!) - Date.now();
    expect(ttl).toBeGreaterThan(6 * 24 * 3600_000); // default: a week
    // Those who may decide are told; the requester is not.
    expect([
      await notified(owner.id, a.id),
      await notified(maintainer!.id, a.id),
      await notified(admin.id, a.id),
      await notified(dev!.id, a.id),
    ]).toEqual([1, 1, 1, 0]);

    const decided = (await approve(owner, a.id, 'Ship it')).data!.approveApproval;
    expect(decided).toMatchObject({ status: 'APPROVED', notes: 'Ship it', decidedBy: { id: owner.id } });
    expect(decided.decidedAt).toBeTruthy();
    expect(await approvalOf(dev!, a.id)).toMatchObject({ status: 'APPROVED', notes: 'Ship it' });
    expect(await notified(dev!.id, a.id)).toBe(1); // the requester hears of the decision
  });

  it('requests approval on a project, and a maintainer rejects it with notes', async () => {
    const {
      owner,
      project,
      members: [maintainer],
    } = await team('MAINTAINER');
    const a = await requested(owner, {
      projectId: project.id,
      actionType: 'delete_repository',
      expiresAt: new Date(Date.now() + 3600_000).toISOString(),
    });
    expect(a).toMatchObject({
      status: 'PENDING',
      task: null,
      project: { id: project.id },
      requestedBy: { id: owner.id },
    });
    const decided = (await reject(maintainer!, a.id, 'Keep the history')).data!.rejectApproval;
    expect(decided).toMatchObject({ status: 'REJECTED', notes: 'Keep the history', decidedBy: { id: maintainer!.id } });
  });

  it('refuses a request without a subject, with a past expiry, or on a task of another project', async () => {
    const { owner, project } = await team();
    const other = await team();
    expect(codes(await request(owner, { actionType: 'deploy' }))).toEqual(['BAD_USER_INPUT']);
    expect(
      codes(
        await request(owner, {
          projectId: project.id,
          actionType: 'deploy',
          expiresAt: new Date(Date.now() - 1000).toISOString(),
        }),
      ),
    ).toEqual(['BAD_USER_INPUT']);
    expect(
      codes(
        await request(other.owner, { projectId: other.project.id, taskId: (await team()).task.id, actionType: 'x' }),
      ),
    ).toEqual(['NOT_FOUND']);
    expect(
      codes(await request(owner, { projectId: other.project.id, taskId: other.task.id, actionType: 'x' })),
    ).toEqual(['NOT_FOUND']);
  });

  it('lets an agent with a service token request approval as a system actor', async () => {
    const { owner, project, task } = await team();
    const token = (
      await ok(
        s.url,
        CreateServiceTokenDocument,
        {
          input: {
            name: unique('agent-'),
            serviceActor: 'agent:senior-engineer',
            expiresAt: SOON,
            scopes: ['read', 'write'],
          },
        },
        admin.token,
      )
    ).createServiceToken.token;
    const a = await requested(token, { taskId: task.id, actionType: 'merge_branch', details: { branch: 'agent/api' } });
    expect(a).toMatchObject({
      status: 'PENDING',
      requestedBy: null,
      requestedByActor: 'agent:senior-engineer',
      project: { id: project.id },
    });
    const [row] = await s.sql(`SELECT requested_by_id, requested_by_actor FROM approvals WHERE id = $1`, [a.id]);
    expect(row).toEqual({ requested_by_id: null, requested_by_actor: 'agent:senior-engineer' });
    expect(await notified(owner.id, a.id)).toBe(1);

    // The agent does not decide; a human does.
    expect(codes(await gql(s.url, ApproveApprovalDocument, { input: { id: a.id } }, token))).toEqual(['FORBIDDEN']);
    expect((await approve(owner, a.id)).data?.approveApproval.status).toBe('APPROVED');
    const [audit] = await s.sql(
      `SELECT actor_label FROM audit_events WHERE action = 'approval.request' AND entity_id = $1`,
      [a.id],
    );
    expect(audit).toEqual({ actor_label: 'agent:senior-engineer' });
  });
});

describe('who decides, and how often', () => {
  it('decides only a PENDING approval: a second decision is a CONFLICT', async () => {
    const {
      owner,
      task,
      members: [dev, maintainer],
    } = await team('CONTRIBUTOR', 'MAINTAINER');
    const a = await requested(dev!, { taskId: task.id, actionType: 'deploy' });
    await approve(owner, a.id);
    expect(codes(await reject(maintainer!, a.id))).toEqual(['CONFLICT']);
    expect(codes(await approve(owner, a.id))).toEqual(['CONFLICT']);
    expect(await approvalOf(owner, a.id)).toMatchObject({ status: 'APPROVED', decidedBy: { id: owner.id } });
  });

  it('lets exactly one of two racing deciders win: the other gets CONFLICT, and one decision is audited', async () => {
    const {
      task,
      members: [dev, m1, m2],
    } = await team('CONTRIBUTOR', 'MAINTAINER', 'MAINTAINER');
    for (let round = 0; round < 3; round++) {
      const a = await requested(dev!, { taskId: task.id, actionType: `deploy-${round}` });
      const [yes, no] = await Promise.all([approve(m1!, a.id, 'yes'), reject(m2!, a.id, 'no')]);
      const outcomes = [codes(yes), codes(no)].map((c) => c[0] ?? 'OK').sort();
      expect(outcomes).toEqual(['CONFLICT', 'OK']);
      const winner = yes.data
        ? { status: 'APPROVED', notes: 'yes', decidedBy: { id: m1!.id } }
        : { status: 'REJECTED', notes: 'no', decidedBy: { id: m2!.id } };
      expect(await approvalOf(dev!, a.id)).toMatchObject(winner);
      const audits = await s.sql(
        `SELECT action FROM audit_events WHERE entity_id = $1 AND action IN ('approval.approve', 'approval.reject')`,
        [a.id],
      );
      expect(audits).toEqual([{ action: winner.status === 'APPROVED' ? 'approval.approve' : 'approval.reject' }]);
      expect(await notified(dev!.id, a.id)).toBe(1); // one decision, one notice
    }
  });

  it('never lets the requester decide its own request, even as a maintainer or an admin', async () => {
    const {
      owner,
      project,
      task,
      members: [maintainer],
    } = await team('MAINTAINER');
    const mine = await requested(maintainer!, { taskId: task.id, actionType: 'deploy' });
    expect(codes(await approve(maintainer!, mine.id))).toEqual(['FORBIDDEN']);
    expect(codes(await reject(maintainer!, mine.id))).toEqual(['FORBIDDEN']);
    const owners = await requested(owner, { projectId: project.id, actionType: 'rename' });
    expect(codes(await approve(owner, owners.id))).toEqual(['FORBIDDEN']);
    const admins = await requested(admin, { projectId: project.id, actionType: 'audit' });
    expect(codes(await approve(admin, admins.id))).toEqual(['FORBIDDEN']);
    // Others may.
    expect((await approve(owner, mine.id)).data?.approveApproval.status).toBe('APPROVED');
    expect((await approve(maintainer!, owners.id)).data?.approveApproval.status).toBe('APPROVED');
    expect((await approve(owner, admins.id)).data?.approveApproval.status).toBe('APPROVED');
  });

  it('refuses CONTRIBUTORs and VIEWERs with FORBIDDEN and strangers with NOT_FOUND', async () => {
    const {
      owner,
      task,
      members: [dev, other, viewer],
    } = await team('CONTRIBUTOR', 'CONTRIBUTOR', 'VIEWER');
    const a = await requested(dev!, { taskId: task.id, actionType: 'deploy' });
    expect(codes(await approve(other!, a.id))).toEqual(['FORBIDDEN']);
    expect(codes(await reject(viewer!, a.id))).toEqual(['FORBIDDEN']);
    expect(codes(await approve(await user(), a.id))).toEqual(['NOT_FOUND']);
    expect(codes(await approve(owner, randomUUID()))).toEqual(['NOT_FOUND']);
    expect(codes(await request(viewer!, { taskId: task.id, actionType: 'deploy' }))).toEqual(['FORBIDDEN']); // viewers do not request either
    expect((await approvalOf(owner, a.id))?.status).toBe('PENDING');
  });

  it('is audited with the decider and the request id', async () => {
    const {
      owner,
      task,
      members: [dev],
    } = await team('CONTRIBUTOR');
    const a = await requested(dev!, { taskId: task.id, actionType: 'deploy' });
    const requestId = `req-${randomUUID()}`;
    const r = await gql(s.url, ApproveApprovalDocument, { input: { id: a.id, notes: 'fine' } }, owner.token, {
      'x-request-id': requestId,
    });
    expect(r.errors).toBeUndefined();
    const rows = await s.sql(
      `SELECT action, actor_id, actor_label, request_id, before, after FROM audit_events WHERE entity_type = 'Approval' AND entity_id = $1 ORDER BY created_at`,
      [a.id],
    );
    expect(rows).toEqual([
      expect.objectContaining({ action: 'approval.request', actor_id: dev!.id }),
      {
        action: 'approval.approve',
        actor_id: owner.id,
        actor_label: `user:${owner.id}`,
        request_id: requestId,
        before: { status: 'PENDING' },
        after: { status: 'APPROVED', notes: 'fine' },
      },
    ]);
  });
});

describe('expiry', () => {
  it('expires pending approvals past their expiry through the job; deciding one then is a CONFLICT', async () => {
    const {
      owner,
      task,
      members: [dev],
    } = await team('CONTRIBUTOR');
    const late = await requested(dev!, {
      taskId: task.id,
      actionType: 'deploy',
      expiresAt: new Date(Date.now() + 60_000).toISOString(),
    });
    const fresh = await requested(dev!, { taskId: task.id, actionType: 'rollback' });
    await expireNow(late.id);

    // Past its expiry it is no longer decidable, nor awaiting anyone, even before the job runs.
    expect(codes(await approve(owner, late.id))).toEqual(['CONFLICT']);
    expect(await listed(owner, { awaitingMe: true, taskId: task.id })).toEqual([fresh.id]);

    const run = await s.app.runtime.scheduler.runNow('work.expireApprovals');
    expect(run.ran).toBe(true);
    expect(run.result).toBeGreaterThanOrEqual(1);
    expect(await approvalOf(dev!, late.id)).toMatchObject({ status: 'EXPIRED', decidedBy: null });
    expect((await approvalOf(dev!, fresh.id))?.status).toBe('PENDING');
    expect(codes(await approve(owner, late.id))).toEqual(['CONFLICT']);
    expect(codes(await reject(owner, late.id))).toEqual(['CONFLICT']);
    expect(await notified(dev!.id, late.id)).toBe(1); // the requester learns it expired
    expect(
      await s.sql(
        `SELECT actor_id, actor_label FROM audit_events WHERE action = 'approval.expire' AND entity_id = $1`,
        [late.id],
      ),
    ).toEqual([{ actor_id: null, actor_label: 'job:approvals.expire' }]);

    // Running again finds nothing more to expire here.
    await s.app.runtime.scheduler.runNow('work.expireApprovals');
    expect((await approvalOf(dev!, fresh.id))?.status).toBe('PENDING');
  });
});

describe('approvals(where)', () => {
  it("lists with awaitingMe the pending approvals one may decide, never one's own", async () => {
    const {
      owner,
      project,
      task,
      members: [m1, m2, dev],
    } = await team('MAINTAINER', 'MAINTAINER', 'CONTRIBUTOR');
    const byM1 = await requested(m1!, { taskId: task.id, actionType: 'a' });
    const byDev = await requested(dev!, { taskId: task.id, actionType: 'b' });
    const decided = await requested(dev!, { projectId: project.id, actionType: 'c' });
    await approve(owner, decided.id);
    const sorted = (...as: { id: string }[]) => as.map((a) => a.id).sort();
    const where = { awaitingMe: true, projectId: project.id };

    expect(await listed(m1!, where)).toEqual(sorted(byDev));
    expect(await listed(m2!, where)).toEqual(sorted(byM1, byDev));
    expect(await listed(owner, where)).toEqual(sorted(byM1, byDev));
    expect(await listed(admin, where)).toEqual(sorted(byM1, byDev));
    expect(await listed(dev!, where)).toEqual([]);
    expect(await listed(dev!, { mine: true })).toEqual(sorted(byDev, decided));
    expect(await listed(dev!, { projectId: project.id, status: ['APPROVED'] })).toEqual(sorted(decided));
    expect(await listed(await user(), { projectId: project.id })).toEqual([]);
  });
});

describe('approval subscriptions', () => {
  /** Subscribes each user to `doc` for the project and waits until all are live on the server. */
  async function listen<T>(
    doc: typeof ApprovalRequestedDocument | typeof ApprovalDecidedDocument,
    projectId: string,
    who: Record<string, TestUser>,
  ) {
    const listeners = busListeners(s);
    const clients = Object.values(who).map((u) => wsClient(s.wsUrl, u.token));
    const subs = Object.fromEntries(
      Object.keys(who).map((name, i) => [name, subscribe(clients[i]!, doc, { projectId })]),
    ) as Record<string, Subscription<T>>;
    await listeners.registered(clients.length);
    /** Each named user's own sentinel on their connection (test/support/sentinel.ts); then nothing may be left unread. */
    const nothingBeforeSentinel = (...names: string[]) =>
      Promise.all(
        names.map(async (name) => {
          const i = Object.keys(who).indexOf(name);
          await sentinel(s, clients[i]!, who[name]!);
          expect(subs[name]!.pending(), name).toEqual([]);
        }),
      );
    return { subs, nothingBeforeSentinel, close: () => Promise.all(clients.map((c) => c.dispose())) };
  }

  it('sends approvalRequested to the owner, maintainers and admins, and not to the requester, contributors, viewers or strangers', async () => {
    const {
      owner,
      project,
      task,
      members: [requester, maintainer, contributor, viewer],
    } = await team('MAINTAINER', 'MAINTAINER', 'CONTRIBUTOR', 'VIEWER');
    const { subs, nothingBeforeSentinel, close } = await listen<{ approvalRequested: { id: string } }>(
      ApprovalRequestedDocument,
      project.id,
      {
        owner,
        maintainer: maintainer!,
        admin,
        requester: requester!,
        contributor: contributor!,
        viewer: viewer!,
        stranger: await user(),
      },
    );
    try {
      const a = await requested(requester!, { taskId: task.id, actionType: 'deploy' });
      for (const name of ['owner', 'maintainer', 'admin']) {
        expect((await subs[name]!.next()).approvalRequested, name).toMatchObject({
          id: a.id,
          status: 'PENDING',
          requestedBy: { id: requester!.id },
        });
      }
      await nothingBeforeSentinel('requester', 'contributor', 'viewer', 'stranger');
    } finally {
      await close();
    }
  });

  it('sends approvalDecided to the requester and those who may decide, and nobody else', async () => {
    const {
      owner,
      project,
      task,
      members: [requester, maintainer, contributor, viewer],
    } = await team('CONTRIBUTOR', 'MAINTAINER', 'CONTRIBUTOR', 'VIEWER');
    const a = await requested(requester!, { taskId: task.id, actionType: 'deploy' });
    const { subs, nothingBeforeSentinel, close } = await listen<{ approvalDecided: { id: string } }>(
      ApprovalDecidedDocument,
      project.id,
      {
        owner,
        maintainer: maintainer!,
        admin,
        requester: requester!,
        contributor: contributor!,
        viewer: viewer!,
        stranger: await user(),
      },
    );
    try {
      await approve(maintainer!, a.id, 'go');
      for (const name of ['requester', 'owner', 'maintainer', 'admin']) {
        expect((await subs[name]!.next()).approvalDecided, name).toMatchObject({
          id: a.id,
          status: 'APPROVED',
          notes: 'go',
          decidedBy: { id: maintainer!.id },
        });
      }
      await nothingBeforeSentinel('contributor', 'viewer', 'stranger');

      // An expiry is a decision too, told to the same people.
      const b = await requested(requester!, { taskId: task.id, actionType: 'rollback' });
      await expireNow(b.id);
      await s.app.runtime.scheduler.runNow('work.expireApprovals');
      expect((await subs.requester!.next()).approvalDecided).toMatchObject({
        id: b.id,
        status: 'EXPIRED',
        decidedBy: null,
      });
      expect((await subs.owner!.next()).approvalDecided).toMatchObject({ id: b.id, status: 'EXPIRED' });
      await nothingBeforeSentinel('contributor');
    } finally {
      await close();
    }
  });
});
