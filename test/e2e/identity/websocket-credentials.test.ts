import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { CreateApiTokenDocument } from '../../generated/graphql.js';
import { ok } from '../../support/client.js';
import { closeCode, newSession, openSocket } from '../../support/identity.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { createUser, firstAdmin, type TestUser } from '../../support/users.js';
import { until } from '../../support/wait.js';

/**
 * A WebSocket authenticates once; afterwards its credentials are followed: revocations
 * that happened while the event bus was reconnecting (their events never heard), and the
 * expiry of the session or API token it was opened with, close it (4401).
 */
let s: TestServer;
let admin: TestUser;
beforeAll(async () => {
  // A short keep-alive round: expiry is checked once per round.
  s = await startTestServer({ env: { WS_KEEPALIVE_MS: '300' } });
  admin = await firstAdmin(s);
});
afterAll(() => s?.close());

const listenBackends = () =>
  s.sql<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN steward_events'`,
  );

describe('WebSocket credentials', () => {
  it('re-checks every socket once the event bus is back, closing those revoked while it was away', async () => {
    const u = await createUser(s, admin);
    const other = await newSession(s, u);
    const revoked = openSocket(s, u.token);
    const kept = openSocket(s, other.token);
    await Promise.all([revoked.connected, kept.connected]);

    // The bus loses its LISTEN connection; a revocation committed meanwhile publishes an event
    // nobody hears (written straight to the database, as a NOTIFY sent in that gap is lost).
    const [listener] = await listenBackends();
    await s.sql(`SELECT pg_terminate_backend($1)`, [listener!.pid]);
    const sessionId = (
      await s.sql<{ id: string }>(`SELECT id FROM sessions WHERE user_id = $1 ORDER BY created_at LIMIT 1`, [u.id])
    )[0]!.id;
    await s.sql(`UPDATE sessions SET revoked_at = now(), revoked_reason = 'test' WHERE id = $1`, [sessionId]);

    expect(await closeCode(revoked, 5000)).toBe(4401);
    await until(async () => (await listenBackends()).length === 1, 'the bus listening again');
    await kept.staysOpen(100);
  });

  it('closes a socket when the session it was opened with expires', async () => {
    const u = await createUser(s, admin);
    await s.sql(`UPDATE sessions SET expires_at = now() + interval '1 second' WHERE user_id = $1`, [u.id]);
    const sock = openSocket(s, u.token);
    await sock.connected;
    const opened = Date.now();
    expect(await closeCode(sock, 5000)).toBe(4401);
    expect(Date.now() - opened).toBeGreaterThan(500);
  });

  it('closes a socket when the API token it was opened with expires, and keeps one whose token has no expiry', async () => {
    const u = await createUser(s, admin);
    const expiring = (
      await ok(
        s.url,
        CreateApiTokenDocument,
        { input: { name: 'short', expiresAt: new Date(Date.now() + 60_000).toISOString() } },
        u.token,
      )
    ).createApiToken;
    const lasting = (await ok(s.url, CreateApiTokenDocument, { input: { name: 'long' } }, u.token)).createApiToken;
    await s.sql(`UPDATE api_tokens SET expires_at = now() + interval '1 second' WHERE id = $1`, [expiring.apiToken.id]);
    const short = openSocket(s, expiring.token);
    const long = openSocket(s, lasting.token);
    await Promise.all([short.connected, long.connected]);
    expect(await closeCode(short, 5000)).toBe(4401);
    await long.staysOpen(400); // more than a keep-alive round after the other's close
  });
});
