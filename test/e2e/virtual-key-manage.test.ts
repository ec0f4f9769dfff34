import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { codes, gql, ok } from '../support/client.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';
import { createFakeProvider } from '../support/providers.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, setRoomyQuota, type TestUser } from '../support/users.js';
import { until } from '../support/wait.js';

/**
 * Virtual keys after their creation (list, update, revoke through GraphQL), driven by the
 * official openai client against a fake provider that counts what it served: a change
 * applies to the very next call, on this instance and on another one sharing the database.
 */
let s: TestServer;
let s2: TestServer;
let fake: FakeOpenAI;
let admin: TestUser;

const MODEL = 'gpt-4o-mini';
const OTHER = 'gpt-4.1-nano';
const KEY_FIELDS = `id userId name prefix allowedModels taskId projectId dailyCostLimitUsd monthlyCostLimitUsd dailyTokenLimit requestsPerMinute expiresAt revokedAt createdAt`;
const CREATE_KEY = `mutation($input: CreateVirtualKeyInput!) { createVirtualKey(input: $input) { token key { ${KEY_FIELDS} } } }`;
const LIST = `query($first: Int, $after: String, $where: VirtualKeyWhereInput) { virtualKeys(first: $first, after: $after, where: $where) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { ${KEY_FIELDS} } } } }`;
const UPDATE = `mutation($input: UpdateVirtualKeyInput!) { updateVirtualKey(input: $input) { ${KEY_FIELDS} } }`;
const REVOKE = `mutation($id: ID!) { revokeVirtualKey(id: $id) { ${KEY_FIELDS} } }`;

const baseOf = (t: TestServer) => t.url.replace(/\/graphql$/, '');
const client = (key: string, on: TestServer = s) =>
  new OpenAI({ apiKey: key, baseURL: `${baseOf(on)}/v1`, maxRetries: 0 });
const ask = (key: string, model = MODEL, on: TestServer = s) =>
  client(key, on)
    .chat.completions.create({ model, messages: [{ role: 'user', content: 'Write a unit test' }], max_tokens: 20 })
    .then(
      () => 'ok',
      (e) => `${e.status}:${e.error?.code}`,
    );

async function user() {
  const u = await createUser(s, admin);
  await setRoomyQuota(s, admin, u.id);
  return u;
}

async function newKey(u: TestUser, input: Record<string, unknown> = {}) {
  const r = await ok(s.url, CREATE_KEY, { input: { name: 'key', ...input } }, u.token);
  return r.createVirtualKey as { token: string; key: Record<string, any> & { id: string } };
}

beforeAll(async () => {
  fake = await startFakeOpenAI();
  s = await startTestServer();
  s2 = await startTestServer({ shareDatabaseWith: s });
  admin = await firstAdmin(s);
  for (const modelName of [MODEL, OTHER])
    await createFakeProvider(
      s.url,
      {
        name: `fake-${modelName}`,
        modelName,
        apiEndpoint: fake.baseURL,
        inputCostPer1k: '0.002000',
        outputCostPer1k: '0.004000',
      },
      admin.token,
    );
});
afterAll(async () => {
  await s2?.close();
  await s?.close();
  await fake?.close();
});

describe('virtual keys, managed after creation', () => {
  it('are listed as a connection (own keys; an administrator names a user or asks for all), never with the token', async () => {
    const u = await user();
    const other = await user();
    const a = await newKey(u, { name: 'first', allowedModels: [MODEL], dailyCostLimitUsd: '2.5' });
    const b = await newKey(u, { name: 'second' });
    await newKey(other, { name: 'theirs' });

    const page1 = (await ok(s.url, LIST, { first: 1 }, u.token)).virtualKeys;
    expect(page1.totalCount).toBe(2);
    expect(page1.pageInfo.hasNextPage).toBe(true);
    expect(page1.edges[0].node).toMatchObject({ id: b.key.id, name: 'second', userId: u.id, revokedAt: null });
    const page2 = (await ok(s.url, LIST, { first: 1, after: page1.pageInfo.endCursor }, u.token)).virtualKeys;
    expect(page2.pageInfo.hasNextPage).toBe(false);
    expect(page2.edges[0].node).toMatchObject({
      id: a.key.id,
      allowedModels: [MODEL],
      dailyCostLimitUsd: a.key.dailyCostLimitUsd,
      prefix: a.token.slice(0, 12),
    });

    // One key by id: its owner's or an administrator's to read.
    const one = `query($id: ID!) { virtualKey(id: $id) { id name allowedModels } }`;
    expect((await ok(s.url, one, { id: a.key.id }, u.token)).virtualKey).toEqual({
      id: a.key.id,
      name: 'first',
      allowedModels: [MODEL],
    });
    expect((await ok(s.url, one, { id: a.key.id }, admin.token)).virtualKey.id).toBe(a.key.id);
    expect(codes(await gql(s.url, one, { id: a.key.id }, other.token))).toEqual(['NOT_FOUND']);

    // The token is not a field of a listed key.
    const withToken = await gql(s.url, `{ virtualKeys { edges { node { token } } } }`, {}, u.token);
    expect(codes(withToken)).toEqual(['GRAPHQL_VALIDATION_FAILED']);

    // Someone else's keys: administrators only.
    expect(codes(await gql(s.url, LIST, { where: { userId: other.id } }, u.token))).toEqual(['FORBIDDEN']);
    expect(codes(await gql(s.url, LIST, { where: { allUsers: true } }, u.token))).toEqual(['FORBIDDEN']);
    const theirs = (await ok(s.url, LIST, { where: { userId: other.id } }, admin.token)).virtualKeys;
    expect(theirs.edges.map((e: any) => e.node.name)).toEqual(['theirs']);
    const all = (await ok(s.url, LIST, { first: 100, where: { allUsers: true } }, admin.token)).virtualKeys;
    expect(all.edges.map((e: any) => e.node.userId)).toEqual(expect.arrayContaining([u.id, other.id]));
  });

  it('an updated allow-list and budget apply to the very next call; the change is audited', async () => {
    const u = await user();
    const { token, key } = await newKey(u, { allowedModels: [MODEL] });
    fake.reset();
    expect(await ask(token)).toBe('ok'); // authenticated and cached
    expect(await ask(token, OTHER)).toBe('403:model_not_allowed');

    const moved = (await ok(s.url, UPDATE, { input: { id: key.id, allowedModels: [OTHER] } }, u.token))
      .updateVirtualKey;
    expect(moved.allowedModels).toEqual([OTHER]);
    expect(await ask(token, OTHER)).toBe('ok');
    expect(await ask(token, MODEL)).toBe('403:model_not_allowed');

    // A budget below one call's reservation: the next call is refused before the provider is asked.
    await ok(s.url, UPDATE, { input: { id: key.id, dailyCostLimitUsd: '0.000001' } }, u.token);
    expect(await ask(token, OTHER)).toBe('429:insufficient_quota');
    // Cleared (null), and the models list left out stays as it is.
    const cleared = (await ok(s.url, UPDATE, { input: { id: key.id, dailyCostLimitUsd: null } }, u.token))
      .updateVirtualKey;
    expect(cleared).toMatchObject({ dailyCostLimitUsd: null, allowedModels: [OTHER] });
    expect(await ask(token, OTHER)).toBe('ok');
    // Every model again.
    await ok(s.url, UPDATE, { input: { id: key.id, allowedModels: null } }, u.token);
    expect(await ask(token, MODEL)).toBe('ok');
    // What the provider really served: the four admitted calls, none of the refused ones.
    expect(fake.ledger.calls.map((c) => c.model)).toEqual([MODEL, OTHER, OTHER, MODEL]);

    const audit = await s.sql<{ before: any; after: any; actor_id: string }>(
      `SELECT before, after, actor_id FROM audit_events WHERE action = 'apiToken.virtualKeyUpdate' AND entity_id = $1 ORDER BY created_at, id`,
      [key.id],
    );
    expect(audit).toHaveLength(4);
    expect(audit[0]).toMatchObject({
      actor_id: u.id,
      before: { allowedModels: [MODEL] },
      after: { allowedModels: [OTHER] },
    });
    expect(audit[1]!.after.dailyCostLimitUsd).toBe('0.000001');
    expect(JSON.stringify(audit)).not.toContain(token);
  });

  it('a change made on one instance applies on another at once (the bus drops its cached key)', async () => {
    const u = await user();
    const { token, key } = await newKey(u);
    expect(await ask(token, MODEL, s2)).toBe('ok'); // cached on the second instance
    await ok(s.url, UPDATE, { input: { id: key.id, allowedModels: [OTHER] } }, u.token);
    await until(async () => (await ask(token, MODEL, s2)) === '403:model_not_allowed', 'the change on s2', 1000);
    // Revoked on the second instance: 401 on the first.
    expect(await ask(token, OTHER, s)).toBe('ok');
    await ok(s2.url, REVOKE, { id: key.id }, u.token);
    await until(async () => (await ask(token, OTHER, s)) === '401:invalid_api_key', 'the revocation on s', 1000);
  });

  it('validates changes as at creation: binding, budgets, expiry, names; owner or administrator only', async () => {
    const u = await user();
    const stranger = await user();
    const { token, key } = await newKey(u);
    const bad = (input: Record<string, unknown>, as = u) =>
      gql(s.url, UPDATE, { input: { id: key.id, ...input } }, as.token).then(codes);
    expect(await bad({ dailyCostLimitUsd: '-1' })).toEqual(['BAD_USER_INPUT']);
    expect(await bad({ requestsPerMinute: 0 })).toEqual(['BAD_USER_INPUT']);
    expect(await bad({ name: '' })).toEqual(['BAD_USER_INPUT']);
    expect(await bad({ expiresAt: new Date(Date.now() - 1000).toISOString() })).toEqual(['BAD_USER_INPUT']);
    expect(await bad({ taskId: 'not-a-uuid' })).toEqual(['BAD_USER_INPUT']);

    // A task the key's user does not work on.
    const project = (
      await ok(
        s.url,
        `mutation { createProject(input: { name: "Other ${Math.random()}" }) { id } }`,
        {},
        stranger.token,
      )
    ).createProject.id;
    const task = (
      await ok(
        s.url,
        `mutation($input: CreateTaskInput!) { createTask(input: $input) { id } }`,
        { input: { projectId: project, title: 'Theirs' } },
        stranger.token,
      )
    ).createTask.id;
    expect(await bad({ taskId: task })).toEqual(['NOT_FOUND']);
    // Not even an administrator binds it there: the key acts as its user, who is not in the project.
    expect(await bad({ taskId: task }, admin)).toEqual(['NOT_FOUND']);
    // Someone else's key is not there for them.
    expect(await bad({ name: 'mine now' }, stranger)).toEqual(['NOT_FOUND']);
    expect(codes(await gql(s.url, REVOKE, { id: key.id }, stranger.token))).toEqual(['NOT_FOUND']);

    // Nothing was written by the refused changes.
    const [row] = await s.sql<{ name: string; bound_task_id: string | null }>(
      `SELECT name, bound_task_id FROM api_tokens WHERE id = $1`,
      [key.id],
    );
    expect(row).toEqual({ name: 'key', bound_task_id: null });

    // Bound to a task of the user's own project: its project comes with it.
    const mine = (
      await ok(s.url, `mutation { createProject(input: { name: "Mine ${Math.random()}" }) { id } }`, {}, u.token)
    ).createProject.id;
    const myTask = (
      await ok(
        s.url,
        `mutation($input: CreateTaskInput!) { createTask(input: $input) { id } }`,
        { input: { projectId: mine, title: 'Mine' } },
        u.token,
      )
    ).createTask.id;
    const bound = (await ok(s.url, UPDATE, { input: { id: key.id, taskId: myTask } }, u.token)).updateVirtualKey;
    expect(bound).toMatchObject({ taskId: myTask, projectId: mine });
    expect(await ask(token)).toBe('ok');
    const [log] = await s.sql<{ task_id: string; project_id: string }>(
      `SELECT task_id, project_id FROM prompt_logs WHERE user_id = $1`,
      [u.id],
    );
    expect(log).toEqual({ task_id: myTask, project_id: mine });

    // An administrator may change (and revoke) anyone's key.
    expect(
      (await ok(s.url, UPDATE, { input: { id: key.id, name: 'renamed' } }, admin.token)).updateVirtualKey.name,
    ).toBe('renamed');
  });

  it('revokeVirtualKey revokes (as revokeApiToken): the very next call is 401; listed only with includeRevoked', async () => {
    const u = await user();
    const { token, key } = await newKey(u);
    fake.reset();
    expect(await ask(token)).toBe('ok');
    const revoked = (await ok(s.url, REVOKE, { id: key.id }, u.token)).revokeVirtualKey;
    expect(revoked.revokedAt).not.toBeNull();
    expect(await ask(token)).toBe('401:invalid_api_key');
    expect(fake.ledger.calls).toHaveLength(1);
    expect((await ok(s.url, LIST, {}, u.token)).virtualKeys.edges).toEqual([]);
    const withRevoked = (await ok(s.url, LIST, { where: { includeRevoked: true } }, u.token)).virtualKeys;
    expect(withRevoked.edges.map((e: any) => e.node.id)).toEqual([key.id]);
    // A revoked key cannot be changed back to life.
    expect(codes(await gql(s.url, UPDATE, { input: { id: key.id, name: 'again' } }, u.token))).toEqual([
      'BAD_USER_INPUT',
    ]);
    const [audit] = await s.sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit_events WHERE action = 'apiToken.revoke' AND entity_id = $1`,
      [key.id],
    );
    expect(audit!.n).toBe(1);
  });
});
