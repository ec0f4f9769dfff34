import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { UsersDocument, UserUpdatedDocument } from '../../generated/graphql.js';
import { deferred, gql, subscribe, wsClient } from '../../support/client.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { firstAdmin } from '../../support/users.js';
import { busListeners, until } from '../../support/wait.js';

/**
 * app.close(), as SIGTERM runs it: stop accepting, let in-flight work finish, close the
 * WebSockets, then the pools. An operation is held in flight by making the service it
 * calls wait for the test.
 */
let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(() => s?.close());

/** Resolves with the socket error code of a fresh TCP connection to the port, or 'connected'. */
const tryConnect = (port: number) =>
  new Promise<string>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });

describe('graceful shutdown', () => {
  it('finishes an in-flight request, closes open WebSockets with 1001, and stops accepting connections', async () => {
    const admin = await firstAdmin(s);
    const ws = wsClient(s.wsUrl, admin.token);
    const listening = busListeners(s);
    const events = subscribe(ws, UserUpdatedDocument, { id: admin.id });
    await listening.registered();

    const entered = deferred();
    const release = deferred();
    const users = s.app.runtime.services.users;
    const list = users.list.bind(users);
    vi.spyOn(users, 'list').mockImplementation(async (...args) => {
      entered.resolve();
      await release.promise;
      return list(...args);
    });
    const inFlight = gql(s.url, UsersDocument, { first: 5 }, admin.token);
    await entered.promise;

    const closing = s.app.close();
    expect(await events.ended).toMatchObject({ code: 1001 });
    await until(() => !s.app.server.listening, 'the server to stop listening');
    expect(await tryConnect(s.app.port)).toBe('ECONNREFUSED');

    release.resolve();
    const answer = await inFlight;
    expect(answer.status).toBe(200);
    expect(answer.errors).toBeUndefined();
    expect(answer.data!.users.edges.map((e) => e.node.id)).toContain(admin.id);

    await closing;
    expect(s.app.connections).toBe(0);
    expect(await s.app.runtime.orm.isConnected()).toBe(false);
    expect(s.app.runtime.db.pool.ended).toBe(true);
    expect(await tryConnect(s.app.port)).toBe('ECONNREFUSED');
    await ws.dispose();
  });
});
