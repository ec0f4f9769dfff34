import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { BlockUserDocument, LogoutDocument } from '../../generated/graphql.js';
import { ok } from '../../support/client.js';
import { closeCode, newSession, openSocket } from '../../support/identity.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { createUser, firstAdmin, type TestUser } from '../../support/users.js';

let s: TestServer;
let admin: TestUser;
beforeAll(async () => {
  s = await startTestServer();
  admin = await firstAdmin(s);
});
afterAll(() => s?.close());

describe('WebSocket authentication', () => {
  it('closes a socket that brings no credentials with 4403', async () => {
    expect(await closeCode(openSocket(s, null))).toBe(4403);
  });

  it('closes a socket with a made-up, tampered or ended token with 4403', async () => {
    const u = await createUser(s, admin);
    const ended = await newSession(s, u);
    await ok(s.url, LogoutDocument, {}, ended.token);
    for (const token of ['garbage', `${u.token.slice(0, -4)}AAAA`, ended.token, `stw_${'x'.repeat(43)}`]) {
      expect(await closeCode(openSocket(s, token))).toBe(4403);
    }
  });

  it('accepts a socket with a valid access token', async () => {
    const u = await createUser(s, admin);
    const sock = openSocket(s, u.token);
    await sock.connected;
    await sock.staysOpen(100);
  });

  it('closes the socket of a user who gets blocked, on every session, and no one else', async () => {
    const u = await createUser(s, admin);
    const bystander = await createUser(s, admin);
    const second = await newSession(s, u);
    const sockets = [openSocket(s, u.token), openSocket(s, second.token)];
    const theirs = openSocket(s, bystander.token);
    await Promise.all([...sockets, theirs].map((x) => x.connected));

    await ok(s.url, BlockUserDocument, { input: { id: u.id, reason: 'compromised' } }, admin.token);
    for (const sock of sockets) expect(await closeCode(sock)).toBe(4401);
    await theirs.staysOpen(200);
  });

  it('closes only the sockets of the session that logs out', async () => {
    const u = await createUser(s, admin);
    const other = await newSession(s, u);
    const leaving = openSocket(s, u.token);
    const staying = openSocket(s, other.token);
    await Promise.all([leaving.connected, staying.connected]);
    await ok(s.url, LogoutDocument, {}, u.token);
    expect(await closeCode(leaving)).toBe(4401);
    await staying.staysOpen(200);
  });
});
