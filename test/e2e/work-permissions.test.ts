import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  AddProjectMemberDocument,
  ApproveApprovalDocument,
  CreateProjectDocument,
  CreateServiceTokenDocument,
  CreateTaskDocument,
  ProjectDocument,
  RemoveProjectMemberDocument,
  RequestApprovalDocument,
  TaskDocument,
  TasksDocument,
  TaskUpdatedDocument,
  UpdateTaskStatusDocument,
} from '../generated/graphql.js';
import { codes, gql, ok, subscribe, wsClient, type GqlError, type Subscription } from '../support/client.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, unique, type TestUser } from '../support/users.js';
import { busListeners } from '../support/wait.js';

/** Service tokens must expire. */
const SOON = new Date(Date.now() + 24 * 3600_000).toISOString();

/**
 * Who may do what in a project's work, as one table: each row an operation, each column
 * an actor, each cell what the actor gets — 'ok', 'null' (a read answers nothing),
 * 'empty' (a list answers no rows), 'event' / 'nothing' (a subscription), or the exact
 * error code. Every row runs against a world of its own.
 */

let s: TestServer;
let admin: TestUser;
let agentToken: string;
beforeAll(async () => {
  s = await startTestServer();
  admin = await firstAdmin(s);
  const created = await ok(
    s.url,
    CreateServiceTokenDocument,
    {
      input: {
        name: 'matrix-agent',
        serviceActor: 'agent:senior-engineer',
        expiresAt: SOON,
        scopes: ['read', 'write'],
      },
    },
    admin.token,
  );
  agentToken = created.createServiceToken.token;
});
afterAll(() => s?.close());

const ACTORS = ['admin', 'owner', 'maintainer', 'contributor', 'viewer', 'observer', 'stranger', 'agent'] as const;
type Actor = (typeof ACTORS)[number];
type Outcome = string;

interface World {
  projectId: string;
  taskId: string;
  owner: TestUser;
  requester: TestUser;
  newcomer: TestUser;
  tokens: Record<Actor, string>;
}

/**
 * A project with an OWNER, a MAINTAINER, a CONTRIBUTOR, a VIEWER and an OBSERVER (global
 * role) added as VIEWER; a stranger; an admin and an agent's service token that are not
 * members; another contributor who requests approvals; a user to be added; one task.
 */
async function world(): Promise<World> {
  const [owner, maintainer, contributor, viewer, observer, stranger, requester, newcomer] = await Promise.all([
    createUser(s, admin),
    createUser(s, admin),
    createUser(s, admin),
    createUser(s, admin),
    createUser(s, admin, 'OBSERVER'),
    createUser(s, admin),
    createUser(s, admin),
    createUser(s, admin),
  ]);
  const projectId = (await ok(s.url, CreateProjectDocument, { input: { name: unique('matrix-') } }, owner!.token))
    .createProject.id;
  const members = [
    [maintainer, 'MAINTAINER'],
    [contributor, 'CONTRIBUTOR'],
    [viewer, 'VIEWER'],
    [observer, 'VIEWER'],
    [requester, 'CONTRIBUTOR'],
  ] as const;
  for (const [m, role] of members)
    await ok(s.url, AddProjectMemberDocument, { input: { projectId, userId: m!.id, role } }, owner!.token);
  const taskId = (await ok(s.url, CreateTaskDocument, { input: { title: 'The task', projectId } }, owner!.token))
    .createTask.id;
  const tokens = {
    admin: admin.token,
    owner: owner!.token,
    maintainer: maintainer!.token,
    contributor: contributor!.token,
    viewer: viewer!.token,
    observer: observer!.token,
    stranger: stranger!.token,
    agent: agentToken,
  };
  return { projectId, taskId, owner: owner!, requester: requester!, newcomer: newcomer!, tokens };
}

const outcome = (r: { data?: unknown; errors?: GqlError[] }, read: (data: any) => unknown): Outcome => {
  if (r.errors?.length) return codes(r).join(',');
  const v = read(r.data);
  if (v == null) return 'null';
  if (Array.isArray(v) && v.length === 0) return 'empty';
  return 'ok';
};

interface Row {
  /** Runs the operation as `token` in world `w` (after any per-actor setup) and names the outcome. */
  run(w: World, token: string): Promise<Outcome>;
  expected: Record<Actor, Outcome>;
}

const READS: Record<Actor, Outcome> = {
  admin: 'ok',
  owner: 'ok',
  maintainer: 'ok',
  contributor: 'ok',
  viewer: 'ok',
  observer: 'ok',
  stranger: 'null',
  agent: 'FORBIDDEN',
};
const WORK: Record<Actor, Outcome> = {
  admin: 'ok',
  owner: 'ok',
  maintainer: 'ok',
  contributor: 'ok',
  viewer: 'FORBIDDEN',
  observer: 'FORBIDDEN',
  stranger: 'NOT_FOUND',
  agent: 'FORBIDDEN',
};
const MANAGE: Record<Actor, Outcome> = {
  admin: 'ok',
  owner: 'ok',
  maintainer: 'ok',
  contributor: 'FORBIDDEN',
  viewer: 'FORBIDDEN',
  observer: 'FORBIDDEN',
  stranger: 'NOT_FOUND',
  agent: 'FORBIDDEN',
};

const MATRIX: Record<string, Row> = {
  'query project': {
    run: async (w, token) => outcome(await gql(s.url, ProjectDocument, { id: w.projectId }, token), (d) => d?.project),
    expected: READS,
  },
  'query task': {
    run: async (w, token) => outcome(await gql(s.url, TaskDocument, { id: w.taskId }, token), (d) => d?.task),
    expected: READS,
  },
  'query tasks(where: { projectId })': {
    run: async (w, token) =>
      outcome(await gql(s.url, TasksDocument, { where: { projectId: w.projectId } }, token), (d) => d?.tasks.edges),
    expected: { ...READS, stranger: 'empty' },
  },
  'mutation createTask': {
    run: async (w, token) =>
      outcome(
        await gql(s.url, CreateTaskDocument, { input: { title: 'New work', projectId: w.projectId } }, token),
        (d) => d?.createTask,
      ),
    expected: WORK,
  },
  'mutation updateTaskStatus': {
    async run(w, token) {
      const taskId = (
        await ok(s.url, CreateTaskDocument, { input: { title: 'To cancel', projectId: w.projectId } }, w.owner.token)
      ).createTask.id;
      return outcome(
        await gql(s.url, UpdateTaskStatusDocument, { input: { taskId, status: 'CANCELLED' } }, token),
        (d) => d?.updateTaskStatus,
      );
    },
    // A service token acts for the system in any live project (agents report progress).
    expected: { ...WORK, agent: 'ok' },
  },
  'mutation addProjectMember': {
    async run(w, token) {
      const r = await gql(
        s.url,
        AddProjectMemberDocument,
        { input: { projectId: w.projectId, userId: w.newcomer.id, role: 'VIEWER' } },
        token,
      );
      if (r.data?.addProjectMember)
        await ok(
          s.url,
          RemoveProjectMemberDocument,
          { input: { projectId: w.projectId, userId: w.newcomer.id } },
          w.owner.token,
        );
      return outcome(r, (d) => d?.addProjectMember);
    },
    expected: MANAGE,
  },
  'mutation requestApproval': {
    run: async (w, token) =>
      outcome(
        await gql(s.url, RequestApprovalDocument, { input: { taskId: w.taskId, actionType: 'deploy' } }, token),
        (d) => d?.requestApproval,
      ),
    expected: { ...WORK, agent: 'ok' },
  },
  'mutation approveApproval': {
    async run(w, token) {
      const id = (
        await ok(
          s.url,
          RequestApprovalDocument,
          { input: { taskId: w.taskId, actionType: 'deploy' } },
          w.requester.token,
        )
      ).requestApproval.id;
      return outcome(await gql(s.url, ApproveApprovalDocument, { input: { id } }, token), (d) => d?.approveApproval);
    },
    expected: MANAGE,
  },
};

describe('the work role matrix', () => {
  it.each(Object.keys(MATRIX))('%s', async (name) => {
    const row = MATRIX[name]!;
    const w = await world();
    const got = {} as Record<Actor, Outcome>;
    for (const actor of ACTORS) got[actor] = await row.run(w, w.tokens[actor]);
    expect(got).toEqual(row.expected);
  });

  it('subscription taskUpdated(projectId)', async () => {
    const w = await world();
    const clients = ACTORS.map((a) => wsClient(s.wsUrl, w.tokens[a]));
    try {
      const listeners = busListeners(s);
      const subs = ACTORS.map((_, i) => subscribe(clients[i]!, TaskUpdatedDocument, { projectId: w.projectId }));
      const byActor = Object.fromEntries(ACTORS.map((a, i) => [a, subs[i]!])) as unknown as Record<
        Actor,
        Subscription<{ taskUpdated: { id: string } }>
      >;
      // The agent is refused at once; everyone else is listening before the change.
      const agentEnd = (await byActor.agent.ended) as GqlError[];
      await listeners.registered(ACTORS.length - 1);

      const taskId = (
        await ok(s.url, CreateTaskDocument, { input: { title: 'Broadcast', projectId: w.projectId } }, w.owner.token)
      ).createTask.id;
      const got = {} as Record<Actor, Outcome>;
      got.agent = agentEnd.map((e) => e.extensions?.code).join(',');
      await Promise.all(
        ACTORS.filter((a) => a !== 'agent').map(async (a) => {
          const sub = byActor[a];
          got[a] = await sub.next(800).then(
            (e) => (e.taskUpdated.id === taskId ? 'event' : 'wrong event'),
            () => 'nothing',
          );
        }),
      );
      expect(got).toEqual({
        admin: 'event',
        owner: 'event',
        maintainer: 'event',
        contributor: 'event',
        viewer: 'event',
        observer: 'event',
        stranger: 'nothing',
        agent: 'FORBIDDEN',
      });
    } finally {
      await Promise.all(clients.map((c) => c.dispose()));
    }
  });
});
