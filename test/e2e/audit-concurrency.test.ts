import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { UpdateMeDocument, VerifyAuditChainDocument } from '../generated/graphql.js';
import { gql, ok } from '../support/client.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, type TestUser } from '../support/users.js';

/**
 * Many writers, two instances sharing one database: every audited mutation commits in
 * its own transaction without waiting for the chain, and the sealers of both instances
 * (one at a time, through the advisory lock) still make ONE linear chain of them.
 */
let a: TestServer;
let b: TestServer;
let admin: TestUser;
beforeAll(async () => {
  a = await startTestServer({ env: { DB_POOL_SIZE: '10' } });
  b = await startTestServer({ shareDatabaseWith: a, env: { DB_POOL_SIZE: '10' } });
  admin = await firstAdmin(a);
});
afterAll(async () => {
  await b?.close();
  await a?.close();
});

const WRITERS = 16;
const WRITES = 100;

describe('the audit chain under concurrent writers', () => {
  it(`makes one linear chain of ${WRITERS} writers × ${WRITES} audited mutations over HTTP, on two instances, that verifies`, async () => {
    const writers = await Promise.all(Array.from({ length: WRITERS }, () => createUser(a, admin)));
    const before = (await ok(a.url, VerifyAuditChainDocument, {}, admin.token)).verifyAuditChain;
    expect(before.ok).toBe(true);

    const failures: unknown[] = [];
    await Promise.all(
      writers.map(async (w, i) => {
        const server = i % 2 === 0 ? a : b;
        for (let n = 0; n < WRITES; n++) {
          const r = await gql(server.url, UpdateMeDocument, { input: { name: `writer ${i} write ${n}` } }, w.token);
          if (r.errors) failures.push(r.errors);
        }
      }),
    );
    expect(failures).toEqual([]);

    const v = (await ok(b.url, VerifyAuditChainDocument, {}, admin.token)).verifyAuditChain;
    const [{ n: total }] = (await a.sql<{ n: number }>(`SELECT count(*)::int AS n FROM audit_events`)) as [
      { n: number },
    ];
    expect(v).toMatchObject({ ok: true, firstBrokenId: null, pending: 0 });
    expect(v.checked).toBe(total);
    expect(v.headSeq).toBe(before.headSeq + WRITERS * WRITES);

    // Exactly the writers' 1600 events were added, each with its own place: 1…N, no gaps, no repeats.
    const ids = writers.map((w) => w.id);
    const [mine] = await a.sql<{ n: number; linked: number; first: number; last: number }>(
      `SELECT count(*)::int AS n, count(seq)::int AS linked, min(seq)::int AS first, max(seq)::int AS last
         FROM audit_events WHERE actor_id = ANY($1) AND action = 'user.updateMe'`,
      [ids],
    );
    expect(mine).toEqual({
      n: WRITERS * WRITES,
      linked: WRITERS * WRITES,
      first: before.headSeq + 1,
      last: before.headSeq + WRITERS * WRITES,
    });
    const [shape] = await a.sql<{ n: number; distinct_seq: number; max: number }>(
      `SELECT count(*)::int AS n, count(DISTINCT seq)::int AS distinct_seq, max(seq)::int AS max FROM audit_events`,
    );
    expect(shape).toEqual({ n: total, distinct_seq: total, max: total });
  }, 120_000); // ~8 s on an idle machine; room for a busy one
});
