import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { LoginDocument } from '../../generated/graphql.js';
import { gql } from '../../support/client.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { firstAdmin, type TestUser } from '../../support/users.js';

/**
 * A client's X-Request-Id reaches the logs and the audit trail only when it is short
 * (≤ 64) and plain (letters, digits, `_ . : -`); anything else is replaced by a fresh
 * UUID before the request runs, so the id a log or audit line carries cannot be used to
 * inject text or bloat rows.
 */
let s: TestServer;
let admin: TestUser;
beforeAll(async () => {
  s = await startTestServer();
  admin = await firstAdmin(s);
});
afterAll(() => s?.close());

/** Logs in with `requestId` and answers the id the audit event of that login carries. */
async function auditedRequestId(requestId: string): Promise<{ header: string | null; audited: string }> {
  const r = await gql(s.url, LoginDocument, { input: { login: admin.email, password: admin.password } }, undefined, {
    'x-request-id': requestId,
  });
  expect(r.errors).toBeUndefined();
  const header = r.headers.get('x-request-id');
  const rows = await s.sql<{ request_id: string }>(
    `SELECT request_id FROM audit_events WHERE action = 'auth.login' AND request_id = $1`,
    [header],
  );
  expect(rows).toHaveLength(1);
  return { header, audited: rows[0]!.request_id };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('X-Request-Id', () => {
  it('is kept, in the answer and the audit event, when short and plain', async () => {
    expect(await auditedRequestId('trace-42.a:b_c')).toEqual({ header: 'trace-42.a:b_c', audited: 'trace-42.a:b_c' });
    const max = 'x'.repeat(64);
    expect(await auditedRequestId(max)).toEqual({ header: max, audited: max });
  });

  it('is replaced by a UUID when too long or carrying other characters', async () => {
    for (const bad of ['x'.repeat(65), 'a b', 'id"};drop', 'ünïcode', 'line\\nbreak', '<script>', '%0d%0a']) {
      const { header, audited } = await auditedRequestId(bad);
      expect(header, bad).toMatch(UUID);
      expect(audited, bad).toBe(header);
    }
  });
});
