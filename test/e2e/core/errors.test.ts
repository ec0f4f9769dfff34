import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { UpdateMeDocument, UsersDocument } from '../../generated/graphql.js';
import { codes, gql, wsClient, wsExecute } from '../../support/client.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { createUser, firstAdmin, type TestUser } from '../../support/users.js';

/**
 * The one error formatter: codes the client can act on, and nothing about the server's
 * insides. An unexpected exception is provoked by making a service method throw: this
 * tests the formatter, which is all that stands between such a throw and the client.
 */
let s: TestServer;
let admin: TestUser;
let ws: Client;
beforeAll(async () => {
  s = await startTestServer();
  admin = await firstAdmin(s);
  ws = wsClient(s.wsUrl, admin.token);
});
afterAll(async () => {
  await ws?.dispose();
  await s?.close();
});

const SECRET = 'password authentication failed for user "steward" at 10.0.0.7:5432';

/** Makes users.list throw an unexpected error for the duration of `fn`, and records what was logged. */
async function whileUsersListFails<T>(fn: (logged: unknown[][]) => Promise<T>): Promise<T> {
  const list = vi.spyOn(s.app.runtime.services.users, 'list').mockRejectedValue(new Error(SECRET));
  const logged: unknown[][] = [];
  const error = vi
    .spyOn(s.app.runtime.logger, 'error')
    .mockImplementation(((...args: unknown[]) => void logged.push(args)) as never);
  try {
    return await fn(logged);
  } finally {
    list.mockRestore();
    error.mockRestore();
  }
}

describe('an unexpected exception in a resolver', () => {
  it('is answered as INTERNAL_SERVER_ERROR over HTTP, without its message or stack, and logged with the request id', async () => {
    await whileUsersListFails(async (logged) => {
      const r = await gql(s.url, UsersDocument, { first: 1 }, admin.token);
      expect(r.errors).toEqual([
        {
          message: 'Internal server error',
          locations: expect.any(Array),
          path: ['users'],
          extensions: { code: 'INTERNAL_SERVER_ERROR', requestId: r.headers.get('x-request-id') },
        },
      ]);
      expect(JSON.stringify(r)).not.toMatch(/password|10\.0\.0\.7|stack|at .*\.ts/);
      const entry = logged.find(([o]) => (o as { requestId?: string }).requestId === r.headers.get('x-request-id'));
      expect((entry?.[0] as { err: Error }).err.message).toBe(SECRET);
    });
  });

  it("is answered as INTERNAL_SERVER_ERROR over WebSocket too, and logged with the operation's request id", async () => {
    await whileUsersListFails(async (logged) => {
      const r = await wsExecute(ws, UsersDocument, { first: 1 });
      expect(codes(r)).toEqual(['INTERNAL_SERVER_ERROR']);
      expect(r.errors![0]!.message).toBe('Internal server error');
      expect(JSON.stringify(r)).not.toMatch(/password|10\.0\.0\.7|stack/);
      const requestId = r.errors![0]!.extensions!.requestId;
      expect(requestId).toEqual(expect.any(String));
      const entry = logged.find(([o]) => (o as { requestId?: string }).requestId === requestId);
      expect((entry?.[0] as { err: Error }).err.message).toBe(SECRET);
    });
  });
});

describe('errors the client can act on', () => {
  it('keeps the code and message of an error a service throws on purpose', async () => {
    const r = await gql(
      s.url,
      'mutation ($id: ID!) { unblockUser(id: $id) { id } }',
      { id: 'not-a-uuid' },
      admin.token,
    );
    expect(r.errors![0]).toMatchObject({
      message: 'id: must be a UUID',
      extensions: { code: 'BAD_USER_INPUT', field: 'id' },
    });
  });

  it('answers invalid input as BAD_USER_INPUT naming each field and its problem', async () => {
    const r = await gql(s.url, UpdateMeDocument, { input: { name: 'x'.repeat(101) } }, admin.token);
    expect(codes(r)).toEqual(['BAD_USER_INPUT']);
    expect(r.errors![0]!.extensions!.fields).toEqual([
      { field: 'name', problems: [expect.stringMatching(/shorter than or equal to 100/)] },
    ]);
  });

  it('answers an operation the viewer may not run as FORBIDDEN, and one needing sign-in as UNAUTHENTICATED', async () => {
    const user = await createUser(s, admin, 'USER');
    expect(codes(await gql(s.url, UsersDocument, { first: 1 }, user.token))).toEqual(['FORBIDDEN']);
    expect(codes(await gql(s.url, UsersDocument, { first: 1 }))).toEqual(['UNAUTHENTICATED']);
  });
});
