import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { MeDocument, UpdateMeDocument, UserUpdatedDocument } from '../generated/graphql.js';
import { codes, gql, ok, subscribe, wsClient } from '../support/client.js';
import { sentinel } from '../support/sentinel.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, type TestUser } from '../support/users.js';
import { busListeners } from '../support/wait.js';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(() => s?.close());

let admin: Promise<TestUser> | undefined;
const adminOf = (server: TestServer) => (admin ??= firstAdmin(server));

describe('the server', () => {
  it('answers { __typename } over HTTP', async () => {
    expect(await ok(s.url, '{ __typename }')).toEqual({ __typename: 'Query' });
  });

  it('reports liveness and readiness', async () => {
    const live = await fetch(`${s.app.url}/healthz`);
    expect(live.status).toBe(200);
    const ready = await fetch(`${s.app.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });

  it('makes the first user ever an ADMIN', async () => {
    const admin = await adminOf(s);
    expect(admin.role).toBe('ADMIN');
    const me = await ok(s.url, MeDocument, {}, admin.token);
    expect(me.me.username).toBe(admin.username);
  });

  it('refuses protected operations without credentials', async () => {
    const r = await gql(s.url, MeDocument);
    expect(codes(r)).toEqual(['UNAUTHENTICATED']);
  });
});

describe('subscriptions over graphql-ws', () => {
  it('delivers a committed change to a subscriber, and nothing to someone not allowed to read it', async () => {
    const admin = await createUser(s, await adminOf(s), 'ADMIN');
    const user = await createUser(s, admin, 'USER');
    const other = await createUser(s, admin, 'USER');
    const adminWs = wsClient(s.wsUrl, admin.token);
    const otherWs = wsClient(s.wsUrl, other.token);
    const listening = busListeners(s);
    const forAdmin = subscribe(adminWs, UserUpdatedDocument, { id: user.id });
    const forOther = subscribe(otherWs, UserUpdatedDocument, { id: user.id });
    await listening.registered(2); // both subscriptions are live on the server before the change
    await ok(s.url, UpdateMeDocument, { input: { name: 'Renamed' } }, user.token);
    expect(await forAdmin.next()).toEqual({
      userUpdated: { id: user.id, name: 'Renamed', role: 'USER', isBlocked: false },
    });
    await sentinel(s, otherWs, other);
    expect(forOther.received).toEqual([]);
    await adminWs.dispose();
    await otherWs.dispose();
  });
});
