import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { codes, gql, ok, wsClient, wsExecute } from '../support/client.js';
import { team } from '../support/projects.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, unique, type TestUser } from '../support/users.js';
import { until } from '../support/wait.js';

const SOON = new Date(Date.now() + 24 * 3600_000).toISOString();
let s: TestServer;
let admin: TestUser;
beforeAll(async () => {
  s = await startTestServer();
  admin = await firstAdmin(s);
});
afterAll(() => s?.close());

const personal = async (u: TestUser, input: Record<string, unknown> = {}) =>
  (
    await ok(
      s.url,
      `mutation($i: CreateApiTokenInput!) { createApiToken(input: $i) { token } }`,
      { i: { name: unique('t-'), ...input } },
      u.token,
    )
  ).createApiToken.token as string;
const service = async (by: TestUser, input: Record<string, unknown> = {}) =>
  (
    await ok(
      s.url,
      `mutation($i: CreateServiceTokenInput!) { createServiceToken(input: $i) { token } }`,
      {
        i: {
          name: unique('svc-'),
          serviceActor: 'agent:senior-engineer',
          expiresAt: SOON,
          scopes: ['read', 'write'],
          ...input,
        },
      },
      by.token,
    )
  ).createServiceToken.token as string;
const createTask = (token: string, projectId?: string) =>
  gql(
    s.url,
    `mutation($i: CreateTaskInput!) { createTask(input: $i) { id } }`,
    { i: { title: 'x', projectId } },
    token,
  );
const projectIds = async (token: string) =>
  (await ok(s.url, `{ projects { edges { node { id } } } }`, {}, token)).projects.edges
    .map((e: { node: { id: string } }) => e.node.id)
    .sort();

describe('API token scopes', () => {
  it('a personal token runs only what its scopes name; without scopes, everything its user may do', async () => {
    const { owner, project } = await team(s, admin, []);
    const readOnly = await personal(owner, { scopes: ['read'] });
    expect((await ok(s.url, `{ me { id } }`, {}, readOnly)).me.id).toBe(owner.id);
    const r = await createTask(readOnly, project.id);
    expect(codes(r)).toEqual(['FORBIDDEN']);
    expect(r.errors![0]!.message).toContain('scopes');
    const all = await personal(owner);
    expect((await createTask(all, project.id)).errors).toBeUndefined();
    expect(
      codes(
        await gql(
          s.url,
          `mutation($i: CreateApiTokenInput!) { createApiToken(input: $i) { token } }`,
          { i: { name: 'x', scopes: ['everything'] } },
          owner.token,
        ),
      ),
    ).toEqual(['BAD_USER_INPUT']);
  });

  it('holds over WebSocket too: a read-only token queries but cannot change anything', async () => {
    const { owner, project } = await team(s, admin, []);
    const readOnly = await personal(owner, { scopes: ['read'] });
    const client = wsClient(s.wsUrl, readOnly);
    try {
      expect((await wsExecute(client, `{ me { id } }`)).data).toEqual({ me: { id: owner.id } });
      const r = await wsExecute(client, `mutation($i: CreateTaskInput!) { createTask(input: $i) { id } }`, {
        i: { title: 'x', projectId: project.id },
      });
      expect(r.errors?.map((e) => e.extensions?.code)).toEqual(['FORBIDDEN']);
    } finally {
      await client.dispose();
    }
  });

  it('a token limited to some projects reaches only those', async () => {
    const a = await team(s, admin, []);
    const b = (
      await ok(
        s.url,
        `mutation($i: CreateProjectInput!) { createProject(input: $i) { id } }`,
        { i: { name: unique('b-') } },
        a.owner.token,
      )
    ).createProject;
    const onlyA = await personal(a.owner, { projectIds: [a.project.id] });
    expect(await projectIds(a.owner.token)).toEqual([a.project.id, b.id].sort());
    expect(await projectIds(onlyA)).toEqual([a.project.id]);
    expect(codes(await createTask(onlyA, b.id))).toEqual(['NOT_FOUND']);
    expect((await createTask(onlyA, a.project.id)).errors).toBeUndefined();
    // Nor the personal tasks.
    expect((await ok(s.url, `{ tasks { totalCount } }`, {}, onlyA)).tasks.totalCount).toBe(2);
  });

  it('a token cannot mint a token with more than it has', async () => {
    const u = await createUser(s, admin);
    const scoped = await personal(u, { scopes: ['read', 'write'] });
    const mint = (i: Record<string, unknown>) =>
      gql(
        s.url,
        `mutation($i: CreateApiTokenInput!) { createApiToken(input: $i) { token } }`,
        { i: { name: 'm', ...i } },
        scoped,
      );
    expect(codes(await mint({}))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await mint({ scopes: ['read', 'ai'] }))).toEqual(['BAD_USER_INPUT']);
    expect((await mint({ scopes: ['read'] })).errors).toBeUndefined();
  });

  it('service tokens need an expiry, and their scopes and projects bound them', async () => {
    const { project, task } = await team(s, admin, []);
    const other = await team(s, admin, []);
    expect(
      codes(
        await gql(
          s.url,
          `mutation($i: CreateServiceTokenInput!) { createServiceToken(input: $i) { token } }`,
          { i: { name: 'forever', serviceActor: 'agent:x' } },
          admin.token,
        ),
      ),
    ).toEqual(['BAD_USER_INPUT']);
    const containersOnly = await service(admin, { scopes: ['containers'] });
    expect((await gql(s.url, `{ containers { totalCount } }`, {}, containersOnly)).errors).toBeUndefined();
    const ask = (token: string, taskId: string) =>
      gql(
        s.url,
        `mutation($i: RequestApprovalInput!) { requestApproval(input: $i) { id } }`,
        { i: { actionType: 'deploy', taskId } },
        token,
      );
    expect(codes(await ask(containersOnly, task.id))).toEqual(['FORBIDDEN']);
    const inProject = await service(admin, { scopes: ['work'], projectIds: [project.id] });
    expect((await ask(inProject, task.id)).errors).toBeUndefined();
    expect(codes(await ask(inProject, other.task.id))).toEqual(['NOT_FOUND']);
  });

  it('a new service token must name its scopes; one made before keeps working, flagged and warned about', async () => {
    const create = (i: Record<string, unknown>) =>
      gql(
        s.url,
        `mutation($i: CreateServiceTokenInput!) { createServiceToken(input: $i) { token } }`,
        { i: { name: unique('svc-'), serviceActor: 'agent:x', expiresAt: SOON, ...i } },
        admin.token,
      );
    for (const missing of [{}, { scopes: [] }, { scopes: null }]) {
      const r = await create(missing);
      expect(codes(r)).toEqual(['BAD_USER_INPUT']);
      expect(r.errors![0]!.message).toContain('scopes');
    }
    const scoped = await create({ scopes: ['containers'] });
    expect(scoped.errors).toBeUndefined();

    // A service token from before the rule: no scopes, stored as it was then.
    const legacy = `stw_${randomBytes(32).toString('base64url')}`;
    await s.sql(
      `INSERT INTO api_tokens (id, user_id, name, prefix, token_hash, scopes, service_actor, expires_at)
       VALUES (gen_random_uuid(), $1, 'legacy runtime', $2, $3, '{}', 'runtime:legacy', now() + interval '1 day')`,
      [admin.id, legacy.slice(0, 12), createHash('sha256').update(legacy).digest('hex')],
    );
    expect((await gql(s.url, `{ containers { totalCount } }`, {}, legacy)).errors).toBeUndefined(); // still works
    const listed = await ok(
      s.url,
      `{ apiTokens(first: 100) { edges { node { prefix scopes unscoped } } } }`,
      {},
      admin.token,
    );
    const byPrefix = new Map(
      listed.apiTokens.edges.map((e: { node: { prefix: string } }) => [e.node.prefix, e.node] as const),
    );
    expect(byPrefix.get(legacy.slice(0, 12))).toEqual({ prefix: legacy.slice(0, 12), scopes: [], unscoped: true });
    const scopedToken = scoped.data!.createServiceToken.token as string;
    expect(byPrefix.get(scopedToken.slice(0, 12))).toMatchObject({ scopes: ['containers'], unscoped: false });
    // The use is in the system log admins read, naming the token.
    const warned = async () =>
      (
        await ok(
          s.url,
          `query($w: SystemLogWhere) { systemLogs(first: 10, where: $w) { edges { node { level module message context } } } }`,
          { w: { search: 'service token without scopes' } },
          admin.token,
        )
      ).systemLogs.edges.map((e: { node: unknown }) => e.node);
    await until(async () => (await warned()).length > 0, 'the unscoped-token warning in systemLogs');
    expect((await warned())[0]).toMatchObject({
      level: 'WARNING',
      module: 'identity',
      context: expect.objectContaining({ prefix: legacy.slice(0, 12), serviceActor: 'runtime:legacy' }),
    });
  });

  it("an admin's service tokens are revoked when they stop being admin; personal tokens stay", async () => {
    const second = await createUser(s, admin, 'ADMIN');
    const svc = await service(second);
    const mine = await personal(second);
    expect((await gql(s.url, `{ containers { totalCount } }`, {}, svc)).errors).toBeUndefined();
    await ok(
      s.url,
      `mutation($i: UpdateUserInput!) { updateUser(input: $i) { role } }`,
      { i: { id: second.id, role: 'USER' } },
      admin.token,
    );
    const after = await gql(s.url, `{ containers { totalCount } }`, {}, svc);
    expect(after.status).toBe(401);
    expect((await ok(s.url, `{ me { id role } }`, {}, mine)).me).toEqual({ id: second.id, role: 'USER' });
  });

  it('logoutAll revokes API tokens only when asked to', async () => {
    const u = await createUser(s, admin);
    const kept = await personal(u);
    await ok(s.url, `mutation { logoutAll }`, {}, u.token);
    expect((await ok(s.url, `{ me { id } }`, {}, kept)).me.id).toBe(u.id);
    await ok(s.url, `mutation { logoutAll(revokeApiTokens: true) }`, {}, kept);
    expect((await gql(s.url, `{ me { id } }`, {}, kept)).status).toBe(401);
  });

  it('lists the scopes and their operations', async () => {
    const r = await ok(s.url, `{ tokenScopes { name kinds operations } }`, {}, admin.token);
    expect(r.tokenScopes.map((x: { name: string }) => x.name)).toEqual(
      expect.arrayContaining(['read', 'write', 'containers', 'analysis', 'evaluations', 'mcp', 'ai']),
    );
  });
});
