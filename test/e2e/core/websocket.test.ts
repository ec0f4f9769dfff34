import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { UpdateMeDocument, UserUpdatedDocument } from '../../generated/graphql.js';
import { codes, ok, subscribe, wsClient, wsExecute } from '../../support/client.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { createUser, firstAdmin, type TestUser } from '../../support/users.js';
import { busListeners, rawSocket, until } from '../../support/wait.js';

/** graphql-ws: who may connect, how long they may dawdle, how much they may send and hold. */
let s: TestServer;
let admin: TestUser;
beforeAll(async () => {
  s = await startTestServer({
    env: { WS_INIT_TIMEOUT_MS: '300', WS_MAX_PAYLOAD_BYTES: '1024', WS_MAX_SUBSCRIPTIONS: '2' },
  });
  admin = await firstAdmin(s);
});
afterAll(() => s?.close());

describe('connecting', () => {
  it('closes a connection that brings no credentials with 4403', async () => {
    const client = wsClient(s.wsUrl, null);
    expect(await wsExecute(client, '{ __typename }')).toMatchObject({ close: { code: 4403, reason: 'Forbidden' } });
    await client.dispose();
  });

  it('closes a connection whose token is invalid, expired or revoked with 4403', async () => {
    const user = await createUser(s, admin);
    await ok(s.url, 'mutation { logout }', undefined, user.token);
    for (const token of ['not-a-token', user.token]) {
      const client = wsClient(s.wsUrl, token);
      expect(await wsExecute(client, '{ __typename }')).toMatchObject({ close: { code: 4403 } });
      await client.dispose();
    }
  });

  it('accepts a signed-in viewer and answers operations', async () => {
    const client = wsClient(s.wsUrl, admin.token);
    expect(await wsExecute(client, '{ me { id } }')).toEqual({ data: { me: { id: admin.id } } });
    await client.dispose();
  });

  it('closes a socket that sends no connection_init within WS_INIT_TIMEOUT_MS with 4408', async () => {
    const raw = rawSocket(s.wsUrl);
    await raw.opened;
    const started = Date.now();
    expect(await raw.closed).toEqual({ code: 4408, reason: 'Connection initialisation timeout' });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('closes a socket that subscribes before connection_init with 4401', async () => {
    const raw = rawSocket(s.wsUrl);
    await raw.opened;
    raw.send({ id: '1', type: 'subscribe', payload: { query: '{ __typename }' } });
    expect((await raw.closed).code).toBe(4401);
  });

  it('refuses the handshake of a socket that does not speak graphql-transport-ws', async () => {
    const raw = rawSocket(s.wsUrl, 'graphql-ws'); // the deprecated subscriptions-transport-ws protocol
    await expect(raw.opened).rejects.toThrow(/before opening/);
  });
});

describe('limits of a socket', () => {
  it('closes a socket that sends a message larger than WS_MAX_PAYLOAD_BYTES with 1009', async () => {
    const client = wsClient(s.wsUrl, admin.token);
    expect(await wsExecute(client, '{ __typename }')).toEqual({ data: { __typename: 'Query' } });
    const big = `{ __typename }${' '.repeat(1100)}`;
    expect(await wsExecute(client, big)).toMatchObject({ close: { code: 1009 } });
    await client.dispose();
  });

  it('refuses a third subscription on a socket capped at two with RATE_LIMITED, and keeps the first two', async () => {
    const user = await createUser(s, admin);
    const client = wsClient(s.wsUrl, user.token);
    const listening = busListeners(s);
    const first = subscribe(client, UserUpdatedDocument, { id: user.id });
    const second = subscribe(client, UserUpdatedDocument, { id: user.id });
    await listening.registered(2);

    const third = await wsExecute(client, UserUpdatedDocument, { id: user.id });
    expect(codes(third)).toEqual(['RATE_LIMITED']);
    expect(third.errors![0]!.message).toBe('At most 2 operations per connection');

    await ok(s.url, UpdateMeDocument, { input: { name: 'Still here' } }, user.token);
    expect((await first.next()).userUpdated.name).toBe('Still here');
    expect((await second.next()).userUpdated.name).toBe('Still here');

    // Ending one frees its place.
    const before = s.app.subscriptions;
    first.dispose();
    await until(() => s.app.subscriptions === before - 1, 'the completed subscription to unregister');
    const again = busListeners(s);
    const replacement = subscribe(client, UserUpdatedDocument, { id: user.id });
    await again.registered(1);
    await ok(s.url, UpdateMeDocument, { input: { name: 'Replaced' } }, user.token);
    expect((await replacement.next()).userUpdated.name).toBe('Replaced');
    second.dispose();
    replacement.dispose();
    await client.dispose();
  });

  it('counts the cap per socket, not per user', async () => {
    const user = await createUser(s, admin);
    const listening = busListeners(s);
    const clients = [wsClient(s.wsUrl, user.token), wsClient(s.wsUrl, user.token)];
    const subs = clients.flatMap((c) => [
      subscribe(c, UserUpdatedDocument, { id: user.id }),
      subscribe(c, UserUpdatedDocument, { id: user.id }),
    ]);
    await listening.registered(4);
    subs.forEach((x) => x.dispose());
    await Promise.all(clients.map((c) => c.dispose()));
  });
});
