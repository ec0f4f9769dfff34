import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { codes, gql, ok, wsClient, wsExecute } from '../../support/client.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { firstAdmin, type TestUser } from '../../support/users.js';

/**
 * Requests that try to get more out of the server than their limits allow: a list of
 * errors as long as the document, a negative page size that hides the cost of its
 * siblings, a nested list of unbounded length. Over real HTTP and WebSocket.
 */
let s: TestServer;
let admin: TestUser;
let ws: Client;

beforeAll(async () => {
  s = await startTestServer({ env: { MAX_QUERY_DIRECTIVES: '10', MAX_QUERY_COST: '1000' } });
  admin = await firstAdmin(s);
  ws = wsClient(s.wsUrl, admin.token);
});
afterAll(async () => {
  await ws?.dispose();
  await s?.close();
});

describe('a document over a limit', () => {
  it('answers 200 repeated directives with the one limit error, over HTTP and WebSocket', async () => {
    const query = `{ me { id ${'@include(if: true) '.repeat(200)} } }`;
    const http = await gql(s.url, query, undefined, admin.token);
    expect(http.errors!.map((e) => e.message)).toEqual(['Directives limit of 10 exceeded, found 200.']);
    expect(codes(http)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    const overWs = await wsExecute(ws, query);
    expect(overWs.errors!.map((e) => e.message)).toEqual(['Directives limit of 10 exceeded, found 200.']);
  });
});

describe('a negative page size', () => {
  it('is refused before anything runs, so it cannot cancel the cost of the siblings it is sent with', async () => {
    // users(first: 100) × 4 fields ≈ 400, twice: over 1000 together; -100 would bring the total near 0.
    const page = (n: number) => `users(first: ${n}) { edges { node { id username email name } } }`;
    const query = `{ a: ${page(100)} b: ${page(100)} c: ${page(100)} d: ${page(-100)} e: ${page(-100)} f: ${page(-100)} }`;
    for (const r of [await gql(s.url, query, undefined, admin.token), await wsExecute(ws, query)]) {
      expect(codes(r)).toEqual(['BAD_USER_INPUT']);
      expect(r.errors![0]!.message).toBe('first must not be less than 0');
      expect(r.data ?? undefined).toBeUndefined(); // a, b and c did not run
    }
  });

  it('refuses a mutation whose selection holds one, and its sibling mutations do not happen', async () => {
    const before = await s.sql<{ n: number }>(`SELECT count(*)::int AS n FROM projects`);
    const r = await gql(
      s.url,
      `mutation { a: createProject(input: { name: "sibling" }) { id } b: createProject(input: { name: "negative" }) { id tasks(first: -1) { totalCount } } }`,
      undefined,
      admin.token,
    );
    expect(codes(r)).toEqual(['BAD_USER_INPUT']);
    expect(r.status).toBe(400);
    expect(await s.sql<{ n: number }>(`SELECT count(*)::int AS n FROM projects`)).toEqual(before);
  });
});

describe('plain nested lists', () => {
  it('return at most 100 items per parent, and are costed at 100', async () => {
    const { createTask } = await ok(
      s.url,
      `mutation { createTask(input: { title: "parent" }) { id } }`,
      undefined,
      admin.token,
    );
    await s.sql(
      `INSERT INTO tasks (id, title, parent_id, created_by_id) SELECT gen_random_uuid(), 'sub ' || i, $1, $2 FROM generate_series(1, 130) i`,
      [createTask.id, admin.id],
    );
    const r = await ok(
      s.url,
      `query ($id: ID!) { task(id: $id) { subtasks { id } } }`,
      { id: createTask.id },
      admin.token,
    );
    expect(r.task.subtasks).toHaveLength(100);
    // tasks(first: 5) × node (1 + subtasks (1 + 100 × 2)) = 1 + 5 × 202 = 1011: over 1000 though most tasks have no subtasks.
    const costly = await gql(
      s.url,
      `{ tasks(first: 5) { edges { node { subtasks { id title } } } } }`,
      undefined,
      admin.token,
    );
    expect(codes(costly)).toEqual(['QUERY_TOO_COMPLEX']);
    expect(costly.errors![0]!.extensions).toMatchObject({ cost: 1011 });
  });
});
