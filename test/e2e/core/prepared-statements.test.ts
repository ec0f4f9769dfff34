import sql, { raw } from 'sql-template-tag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createSqlClient, type SqlClient } from '../../../src/db/sql.js';
import { ok } from '../../support/client.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { createUser, firstAdmin } from '../../support/users.js';

/**
 * The read path prepares each statement text once per connection. Texts follow the
 * client's selection, so the number a connection keeps must be bounded, or a client
 * choosing fields fills the server's memory with statements that are never freed.
 */
let s: TestServer;
let db: SqlClient;
beforeAll(async () => {
  s = await startTestServer();
  // One connection, so that every statement lands on the connection the test inspects.
  db = createSqlClient(s.dbUrl, 1, { maxPreparedPerConnection: 5 });
});
afterAll(async () => {
  await db?.close();
  await s?.close();
});

const prepared = async () =>
  (await db.query<{ n: number }>(sql`SELECT count(*)::int AS n FROM pg_prepared_statements`))[0]!.n;

describe('prepared statements of the read path', () => {
  it('keeps at most maxPreparedPerConnection per connection, deallocating the least recently used', async () => {
    for (let i = 0; i < 40; i++) {
      const rows = await db.query<{ v: number }>(sql`SELECT ${raw(String(i))}::int AS v`);
      expect(rows[0]!.v).toBe(i);
    }
    // The counting statement is itself one of them.
    expect(await prepared()).toBeLessThanOrEqual(5);
    const names = await db.query<{ statement: string }>(
      sql`SELECT statement FROM pg_prepared_statements ORDER BY prepare_time`,
    );
    expect(names.map((r) => r.statement)).not.toContain('SELECT 0::int AS v');
  });

  it('prepares an evicted text again when it comes back, and answers it', async () => {
    const first = await db.query<{ v: number }>(sql`SELECT ${raw('0')}::int AS v`);
    expect(first[0]!.v).toBe(0);
    // A text whose Parse fails is not counted as prepared and does not break the next ones.
    await expect(db.query(sql`SELECT no_such_column FROM users`)).rejects.toThrow(/no_such_column/);
    for (let i = 100; i < 110; i++)
      expect((await db.query<{ v: number }>(sql`SELECT ${raw(String(i))}::int AS v, ${i}::int AS w`))[0]!.v).toBe(i);
    expect(await prepared()).toBeLessThanOrEqual(5);
  });

  it('selects the same columns in one text whatever order the query names its fields', async () => {
    const admin = await firstAdmin(s);
    await createUser(s, admin);
    const texts: string[] = [];
    const pool = s.app.runtime.db.pool as unknown as { query: (...args: unknown[]) => unknown };
    const original = pool.query;
    pool.query = function (this: unknown, ...args: unknown[]) {
      const q = args[0] as string | { text: string };
      texts.push(typeof q === 'string' ? q : q.text);
      return original.apply(this, args);
    };
    try {
      await ok(s.url, '{ users(first: 5) { edges { node { id username email name } } } }', undefined, admin.token);
      await ok(s.url, '{ users(first: 5) { edges { node { name email username id } } } }', undefined, admin.token);
    } finally {
      pool.query = original;
    }
    const selects = texts.filter((t) => /FROM "users"/.test(t));
    expect(selects.length).toBeGreaterThanOrEqual(2);
    expect(new Set(selects).size).toBe(1);
  });
});
