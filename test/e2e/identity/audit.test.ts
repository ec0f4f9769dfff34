import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';

import {
  AuditEventsDocument,
  BlockUserDocument,
  UpdateMeDocument,
  UpdateUserDocument,
} from '../../generated/graphql.js';
import { codes, gql, ok, wsClient, wsExecute } from '../../support/client.js';
import { login } from '../../support/identity.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { createUser, firstAdmin, type TestUser } from '../../support/users.js';

let s: TestServer;
let admin: TestUser;
beforeAll(async () => {
  s = await startTestServer();
  admin = await firstAdmin(s);
});
afterAll(() => s?.close());

interface AuditRow {
  actor_id: string | null;
  actor_label: string;
  action: string;
  entity_type: string;
  entity_id: string | null;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  outcome: string;
  request_id: string;
  ip: string;
  user_agent: string;
}
const byRequest = (requestId: string) =>
  s.sql<AuditRow>('SELECT *, host(ip) AS ip FROM audit_events WHERE request_id = $1', [requestId]);
const headersFor = (requestId: string) => ({ 'x-request-id': requestId, 'user-agent': 'AuditProbe/1.0' });

describe('the audit trail', () => {
  it('records a mutation with its actor, action, entity, before and after, request id, ip and user agent', async () => {
    const u = await createUser(s, admin);
    const requestId = `req-${randomUUID()}`;
    const r = await gql(s.url, UpdateMeDocument, { input: { name: 'Audited Name' } }, u.token, headersFor(requestId));
    expect(r.errors).toBeUndefined();
    expect(r.headers.get('x-request-id')).toBe(requestId);

    const rows = await byRequest(requestId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      actor_id: u.id,
      actor_label: `user:${u.id}`,
      action: 'user.updateMe',
      entity_type: 'User',
      entity_id: u.id,
      before: { name: `Test ${u.username}`, username: u.username },
      after: { name: 'Audited Name', username: u.username },
      outcome: 'SUCCESS',
      request_id: requestId,
      ip: '127.0.0.1',
      user_agent: 'AuditProbe/1.0',
    });
  });

  it("records an admin's change to another user with that admin as the actor", async () => {
    const u = await createUser(s, admin);
    const requestId = `req-${randomUUID()}`;
    await gql(s.url, UpdateUserDocument, { input: { id: u.id, tier: 'VIP' } }, admin.token, headersFor(requestId));
    const [row] = await byRequest(requestId);
    expect(row).toMatchObject({
      actor_id: admin.id,
      action: 'user.update',
      entity_id: u.id,
      before: { tier: 'BASIC' },
      after: { tier: 'VIP' },
    });
  });

  it('records a failed login with outcome FAILURE, for known and unknown accounts', async () => {
    const u = await createUser(s, admin);
    const wrong = `req-${randomUUID()}`;
    await login(s, u.email, 'not the password', undefined, headersFor(wrong));
    expect(await byRequest(wrong)).toEqual([
      expect.objectContaining({
        actor_id: null,
        actor_label: 'anonymous',
        action: 'auth.login',
        entity_type: 'User',
        entity_id: u.id,
        outcome: 'FAILURE',
        ip: '127.0.0.1',
        user_agent: 'AuditProbe/1.0',
      }),
    ]);
    expect((await byRequest(wrong))[0]!.after).toMatchObject({ reason: 'wrong password', failedAttempts: 1 });

    const unknown = `req-${randomUUID()}`;
    await login(s, 'no-such-user', 'whatever password', undefined, headersFor(unknown));
    expect(await byRequest(unknown)).toEqual([
      expect.objectContaining({ action: 'auth.login', entity_id: null, outcome: 'FAILURE' }),
    ]);

    const right = `req-${randomUUID()}`;
    await login(s, u.email, u.password, undefined, headersFor(right));
    expect(await byRequest(right)).toEqual([
      expect.objectContaining({ actor_id: u.id, action: 'auth.login', outcome: 'SUCCESS' }),
    ]);
  });

  it('writes nothing when the change is refused', async () => {
    const u = await createUser(s, admin);
    const taken = await createUser(s, admin);
    const forbidden = `req-${randomUUID()}`;
    expect(
      codes(
        await gql(s.url, UpdateUserDocument, { input: { id: admin.id, role: 'USER' } }, u.token, headersFor(forbidden)),
      ),
    ).toEqual(['FORBIDDEN']);
    const selfBlock = `req-${randomUUID()}`;
    expect(
      codes(
        await gql(
          s.url,
          BlockUserDocument,
          { input: { id: admin.id, reason: 'me' } },
          admin.token,
          headersFor(selfBlock),
        ),
      ),
    ).toEqual(['FORBIDDEN']);
    const conflict = `req-${randomUUID()}`;
    expect(
      codes(await gql(s.url, UpdateMeDocument, { input: { username: taken.username } }, u.token, headersFor(conflict))),
    ).toEqual(['CONFLICT']);
    for (const requestId of [forbidden, selfBlock, conflict]) expect(await byRequest(requestId)).toEqual([]);
  });

  it('never records a password, and shows users only their own events', async () => {
    const u = await createUser(s, admin);
    const leaks = await s.sql(`SELECT id FROM audit_events WHERE before::text LIKE $1 OR after::text LIKE $1`, [
      `%${u.password}%`,
    ]);
    expect(leaks).toEqual([]);
    const mine = (await ok(s.url, AuditEventsDocument, { first: 50 }, u.token)).auditEvents.edges.map((e) => e.node);
    expect(mine.length).toBeGreaterThan(0);
    for (const e of mine) expect(e.actorId).toBe(u.id);
  });

  it('records mutations over a WebSocket with the request id its upgrade named, or with one of their own', async () => {
    const u = await createUser(s, admin);
    const requestId = `ws-${randomUUID()}`;
    // A WebSocket whose upgrade request carries the X-Request-Id header.
    class Named extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols, { headers: headersFor(requestId) });
      }
    }
    const named = wsClient(s.wsUrl, u.token, { webSocketImpl: Named });
    const plain = wsClient(s.wsUrl, u.token);
    try {
      for (const name of ['First', 'Second'])
        expect((await wsExecute(named, UpdateMeDocument, { input: { name } })).errors).toBeUndefined();
      expect((await byRequest(requestId)).map((r) => r.action)).toEqual(['user.updateMe', 'user.updateMe']);

      for (const name of ['Third', 'Fourth'])
        expect((await wsExecute(plain, UpdateMeDocument, { input: { name } })).errors).toBeUndefined();
      const own = await s.sql<{ request_id: string }>(
        `SELECT request_id FROM audit_events WHERE actor_id = $1 AND action = 'user.updateMe' AND request_id <> $2`,
        [u.id, requestId],
      );
      expect(own).toHaveLength(2);
      expect(new Set(own.map((r) => r.request_id)).size).toBe(2);
    } finally {
      await Promise.all([named.dispose(), plain.dispose()]);
    }
  });
});
