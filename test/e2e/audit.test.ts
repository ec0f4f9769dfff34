import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  AuditEventsWhereDocument,
  CreateProjectDocument,
  SystemLogsDocument,
  UpdateMeDocument,
  VerifyAuditChainDocument,
} from '../generated/graphql.js';
import { codes, gql, ok } from '../support/client.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, unique, type TestUser } from '../support/users.js';
import { until } from '../support/wait.js';

let s: TestServer;
let admin: TestUser;
beforeAll(async () => {
  s = await startTestServer();
  admin = await firstAdmin(s);
});
afterAll(() => s?.close());

const verify = async () => (await ok(s.url, VerifyAuditChainDocument, {}, admin.token)).verifyAuditChain;
const rename = (u: TestUser, name = unique('name-')) => ok(s.url, UpdateMeDocument, { input: { name } }, u.token);
const count = async (where = 'TRUE') =>
  (await s.sql<{ n: number }>(`SELECT count(*)::int AS n FROM audit_events WHERE ${where}`))[0]!.n;

interface Link {
  id: string;
  seq: number;
  hash: string;
  prev_hash: string;
}
const links = () =>
  s.sql<Link>(`SELECT id, seq::int AS seq, hash, prev_hash FROM audit_events WHERE seq IS NOT NULL ORDER BY seq`);

/**
 * Statements as the database superuser with triggers off (session_replication_role =
 * replica): what an intruder with the database's keys could do, and what the chain
 * must reveal.
 */
async function privileged<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: s.dbUrl });
  await c.connect();
  try {
    await c.query(`SET session_replication_role = replica`);
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Three fresh links in the middle of a chain that holds, for a test to tamper with and restore. */
async function middleLinks() {
  const u = await createUser(s, admin);
  for (let i = 0; i < 5; i++) await rename(u);
  expect((await verify()).ok).toBe(true);
  const all = await links();
  return all.slice(-4, -1); // the last link stays after them
}

describe('the hash chain', () => {
  it('links every audited change, in one chain from the first event, and verifies it', async () => {
    const u = await createUser(s, admin);
    await rename(u);
    await ok(s.url, CreateProjectDocument, { input: { name: unique('p-') } }, u.token);
    const v = await verify();
    expect(v).toMatchObject({ ok: true, firstBrokenId: null, firstBrokenSeq: null, reason: null, pending: 0 });
    expect(v.checked).toBe(await count());
    expect(v.headSeq).toBe(v.checked);
    const chain = await links();
    expect(chain.map((l) => l.seq)).toEqual(chain.map((_, i) => i + 1));
    expect(chain[0]!.prev_hash).toBe('0'.repeat(64));
    for (let i = 1; i < chain.length; i++) expect(chain[i]!.prev_hash).toBe(chain[i - 1]!.hash);
    expect(v.headHash).toBe(chain.at(-1)!.hash);
  });

  it('links an event moments after its commit, with no verification asking for it', async () => {
    const u = await createUser(s, admin);
    const requestId = `req-${randomUUID()}`;
    await gql(s.url, UpdateMeDocument, { input: { name: 'Sealed soon' } }, u.token, { 'x-request-id': requestId });
    await until(
      async () => (await count(`request_id = '${requestId}' AND hash IS NOT NULL`)) === 1,
      'the event to be linked',
    );
  });

  it('shows the links on the events, and lets users read only their own', async () => {
    const u = await createUser(s, admin);
    await rename(u);
    await verify();
    const mine = (await ok(s.url, AuditEventsWhereDocument, { first: 10, where: { action: 'user.updateMe' } }, u.token))
      .auditEvents;
    expect(mine.totalCount).toBe(1);
    expect(mine.edges[0]!.node).toMatchObject({
      actorId: u.id,
      action: 'user.updateMe',
      seq: expect.any(Number),
      hash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(mine.edges[0]!.node.sealedAt).toBeTruthy();
    // Asking for someone else's actions finds nothing.
    expect(
      (await ok(s.url, AuditEventsWhereDocument, { first: 10, where: { actorId: admin.id } }, u.token)).auditEvents
        .totalCount,
    ).toBe(0);
  });

  it('lets only admins verify the chain', async () => {
    const u = await createUser(s, admin);
    expect(codes(await gql(s.url, VerifyAuditChainDocument, {}, u.token))).toEqual(['FORBIDDEN']);
    expect(codes(await gql(s.url, VerifyAuditChainDocument, {}))).toEqual(['UNAUTHENTICATED']);
  });
});

describe('append-only', () => {
  it('refuses to change, delete or truncate events, through the table or any of its partitions', async () => {
    const u = await createUser(s, admin);
    await rename(u);
    await verify();
    const [e] = await s.sql<{ id: string; part: string }>(
      `SELECT id, tableoid::regclass::text AS part FROM audit_events WHERE actor_id = $1 AND action = 'user.updateMe'`,
      [u.id],
    );
    const refused = async (text: string, values?: unknown[]) =>
      expect(s.sql(text, values)).rejects.toThrow(/append-only|unlinked/);
    await refused(`UPDATE audit_events SET after = '{"name":"forged"}' WHERE id = $1`, [e!.id]);
    await refused(`UPDATE audit_events SET hash = repeat('a', 64) WHERE id = $1`, [e!.id]); // once linked, never relinked
    await refused(`UPDATE ${e!.part} SET action = 'forged' WHERE id = $1`, [e!.id]);
    await refused(`DELETE FROM audit_events WHERE id = $1`, [e!.id]);
    await refused(`DELETE FROM ${e!.part} WHERE id = $1`, [e!.id]);
    await refused(`TRUNCATE audit_events`);
    await refused(`TRUNCATE ${e!.part}`);
    await refused(`TRUNCATE audit_events_default`);
    await refused(
      `INSERT INTO audit_events (id, actor_label, action, entity_type, seq, prev_hash, hash, sealed_at) VALUES ($1, 'x', 'forged', 'X', 999999, 'p', 'h', now())`,
      [randomUUID()],
    );
    expect(await count(`id = '${e!.id}' AND action = 'user.updateMe'`)).toBe(1);
    expect((await verify()).ok).toBe(true);
  });

  it('is partitioned by month, with the coming months ready and a job that keeps them so', async () => {
    const parts = await s.sql<{ name: string }>(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'audit_events'::regclass ORDER BY 1`,
    );
    const month = (offset: number) => {
      const d = new Date();
      const m = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + offset, 1));
      return `audit_events_${m.getUTCFullYear()}_${String(m.getUTCMonth() + 1).padStart(2, '0')}`;
    };
    const names = parts.map((p) => p.name);
    for (const offset of [0, 1, 2, 3]) expect(names).toContain(month(offset));
    expect(names).toContain('audit_events_default');
    const [key] = await s.sql<{ key: string }>(`SELECT pg_get_partkeydef('audit_events'::regclass) AS key`);
    expect(key!.key).toBe('RANGE (created_at)');

    const run = await s.app.runtime.scheduler.runNow('audit.partitions');
    expect(run).toMatchObject({ ran: true, result: { created: 0 } }); // already there: nothing to do
    // Today's events land in today's month.
    const u = await createUser(s, admin);
    await rename(u);
    const [row] = await s.sql<{ part: string }>(
      `SELECT tableoid::regclass::text AS part FROM audit_events WHERE actor_id = $1 AND action = 'user.updateMe'`,
      [u.id],
    );
    expect(row!.part).toBe(month(0));
  });
});

describe('tampering', () => {
  it('names the link whose content was changed', async () => {
    const [, target] = await middleLinks();
    const [before] = await s.sql<{ after: unknown }>(`SELECT after FROM audit_events WHERE id = $1`, [target!.id]);
    await privileged((c) => c.query(`UPDATE audit_events SET after = '{"name":"forged"}' WHERE id = $1`, [target!.id]));
    try {
      const v = await verify();
      expect(v).toMatchObject({ ok: false, firstBrokenId: target!.id, firstBrokenSeq: target!.seq });
      expect(v.reason).toMatch(/content was changed/);
      expect(v.checked).toBe(target!.seq);
    } finally {
      await privileged((c) =>
        c.query(`UPDATE audit_events SET after = $2 WHERE id = $1`, [target!.id, JSON.stringify(before!.after)]),
      );
    }
    expect((await verify()).ok).toBe(true);
  });

  it('names the link after an event deleted from the middle', async () => {
    const [, gone, next] = await middleLinks();
    const [saved] = await s.sql<{ row: Record<string, unknown> }>(
      `SELECT row_to_json(e) AS row FROM audit_events e WHERE id = $1`,
      [gone!.id],
    );
    await privileged((c) => c.query(`DELETE FROM audit_events WHERE id = $1`, [gone!.id]));
    try {
      const v = await verify();
      expect(v).toMatchObject({ ok: false, firstBrokenId: next!.id, firstBrokenSeq: next!.seq });
      expect(v.reason).toMatch(new RegExp(`link ${gone!.seq} is missing`));
    } finally {
      await privileged((c) =>
        c.query(`INSERT INTO audit_events SELECT * FROM json_populate_record(null::audit_events, $1)`, [
          JSON.stringify(saved!.row),
        ]),
      );
    }
    expect((await verify()).ok).toBe(true);
  });

  it('names the first of two events whose places were swapped', async () => {
    const [a, b] = await middleLinks();
    const swap = (c: pg.Client) =>
      c.query(
        `UPDATE audit_events e SET seq = o.seq, prev_hash = o.prev_hash, hash = o.hash
           FROM audit_events o WHERE (e.id, o.id) IN (($1::uuid, $2::uuid), ($2::uuid, $1::uuid))`,
        [a!.id, b!.id],
      );
    await privileged(swap);
    try {
      const v = await verify();
      // Link a's place now holds b's event: the chain breaks there.
      expect(v).toMatchObject({ ok: false, firstBrokenId: b!.id, firstBrokenSeq: a!.seq });
    } finally {
      await privileged(swap);
    }
    expect((await verify()).ok).toBe(true);
  });

  it('names the first of two events whose contents were swapped', async () => {
    const [a, , b] = await middleLinks();
    const swap = (c: pg.Client) =>
      c.query(
        `UPDATE audit_events e SET action = o.action, before = o.before, after = o.after, request_id = o.request_id
           FROM audit_events o WHERE (e.id, o.id) IN (($1::uuid, $2::uuid), ($2::uuid, $1::uuid))`,
        [a!.id, b!.id],
      );
    const original = await s.sql(
      `SELECT id, action, before, after, request_id FROM audit_events WHERE id = ANY($1) ORDER BY id`,
      [[a!.id, b!.id]],
    );
    await privileged(swap);
    try {
      expect(
        await s.sql(`SELECT id, action, before, after, request_id FROM audit_events WHERE id = ANY($1) ORDER BY id`, [
          [a!.id, b!.id],
        ]),
      ).not.toEqual(original);
      expect(await verify()).toMatchObject({ ok: false, firstBrokenId: a!.id, firstBrokenSeq: a!.seq });
    } finally {
      await privileged(swap);
    }
    expect((await verify()).ok).toBe(true);
  });

  it('notices events cut off the end of the chain', async () => {
    const [, , last] = await middleLinks();
    const tail = (await links()).filter((l) => l.seq > last!.seq);
    const saved = await s.sql<{ row: Record<string, unknown> }>(
      `SELECT row_to_json(e) AS row FROM audit_events e WHERE seq >= $1`,
      [last!.seq],
    );
    await privileged((c) => c.query(`DELETE FROM audit_events WHERE seq >= $1`, [last!.seq]));
    try {
      const v = await verify();
      expect(v).toMatchObject({ ok: false, firstBrokenId: null, firstBrokenSeq: last!.seq });
      expect(v.reason).toMatch(/removed from its end/);
    } finally {
      await privileged(async (c) => {
        for (const { row } of saved)
          await c.query(`INSERT INTO audit_events SELECT * FROM json_populate_record(null::audit_events, $1)`, [
            JSON.stringify(row),
          ]);
      });
    }
    expect(tail.length).toBeGreaterThan(0);
    expect((await verify()).ok).toBe(true);
  });
});

describe('auditEvents', () => {
  it('filters by actor, entity, action, outcome and time, newest first, page by page', async () => {
    const u = await createUser(s, admin);
    const start = new Date().toISOString();
    for (let i = 0; i < 3; i++) await rename(u, `name ${i}`);
    const p = (await ok(s.url, CreateProjectDocument, { input: { name: unique('p-') } }, u.token)).createProject;
    const list = async (where: Record<string, unknown>, first = 10, after?: string | null) =>
      (await ok(s.url, AuditEventsWhereDocument, { first, after, where }, admin.token)).auditEvents;

    const byActor = await list({ actorId: u.id, from: start });
    expect(byActor.edges.map((e) => e.node.action)).toEqual([
      'project.create',
      'user.updateMe',
      'user.updateMe',
      'user.updateMe',
    ]);
    expect((await list({ actorId: u.id, action: 'user.updateMe' })).totalCount).toBe(3);
    expect((await list({ actorId: u.id, actionPrefix: 'project.' })).edges.map((e) => e.node.entityId)).toEqual([p.id]);
    expect((await list({ entityType: 'Project', entityId: p.id })).edges.map((e) => e.node.action)).toEqual([
      'project.create',
    ]);
    expect((await list({ actorId: u.id, outcome: 'FAILURE' })).totalCount).toBe(0);
    expect((await list({ actorId: u.id, to: start })).edges.map((e) => e.node.action)).not.toContain('user.updateMe');
    expect((await list({ actorId: u.id, from: new Date(Date.now() + 60_000).toISOString() })).totalCount).toBe(0);

    const page1 = await list({ actorId: u.id, from: start }, 2);
    const page2 = await list({ actorId: u.id, from: start }, 2, page1.pageInfo.endCursor);
    expect(page1.pageInfo.hasNextPage).toBe(true);
    expect([...page1.edges, ...page2.edges].map((e) => e.node.id)).toEqual(byActor.edges.map((e) => e.node.id));
  });

  it('refuses a malformed filter', async () => {
    const r = await gql(s.url, AuditEventsWhereDocument, { first: 5, where: { actorId: 'not-a-uuid' } }, admin.token);
    expect(codes(r)).toEqual(['BAD_USER_INPUT']);
  });
});

describe('system logs', () => {
  it("keeps the server's warnings and errors with module, message and context, for admins only", async () => {
    const tag = unique('probe-');
    const log = s.app.runtime.logger;
    log.info({ module: 'probe', tag }, `${tag} info is not kept`);
    log.warn({ module: 'probe', tag, requestId: 'req-probe', detail: { n: 1 } }, `${tag} a warning`);
    log.child({ job: 'probe.job' }).error({ err: new Error('boom'), tag }, `${tag} an error`);
    log.warn({ module: 'probe', tag, user: { password: 'hunter2-secret' } }, `${tag} with a secret`);

    const find = async (where: Record<string, unknown> = {}) =>
      (await ok(s.url, SystemLogsDocument, { first: 20, where: { search: tag, ...where } }, admin.token)).systemLogs;
    await until(async () => (await find()).totalCount === 3, 'three log lines kept');
    const all = (await find()).edges.map((e) => e.node);
    expect(all.map((l) => l.message).sort()).toEqual([`${tag} a warning`, `${tag} an error`, `${tag} with a secret`]);
    const warning = all.find((l) => l.message === `${tag} a warning`)!;
    expect(warning).toMatchObject({
      level: 'WARNING',
      module: 'probe',
      requestId: 'req-probe',
      context: { tag, detail: { n: 1 } },
    });
    const error = all.find((l) => l.message === `${tag} an error`)!;
    expect(error).toMatchObject({
      level: 'ERROR',
      module: 'jobs',
      context: { job: 'probe.job', err: { message: 'boom' } },
    });
    expect(JSON.stringify(all)).not.toContain('hunter2-secret');

    expect((await find({ levels: ['ERROR'] })).edges.map((e) => e.node.message)).toEqual([`${tag} an error`]);
    expect((await find({ minLevel: 'ERROR' })).totalCount).toBe(1);
    expect((await find({ module: 'probe' })).totalCount).toBe(2);
    expect((await find({ from: new Date(Date.now() + 60_000).toISOString() })).totalCount).toBe(0);

    const u = await createUser(s, admin);
    expect(codes(await gql(s.url, SystemLogsDocument, { first: 5 }, u.token))).toEqual(['FORBIDDEN']);
  });

  it('deletes logs past their retention with a job', async () => {
    const tag = unique('old-');
    s.app.runtime.logger.warn({ module: 'probe' }, `${tag} old news`);
    await until(
      async () => (await s.sql(`SELECT 1 FROM system_logs WHERE message LIKE $1`, [`${tag}%`])).length === 1,
      'the line kept',
    );
    await s.sql(`UPDATE system_logs SET created_at = now() - interval '31 days' WHERE message LIKE $1`, [`${tag}%`]);
    const run = await s.app.runtime.scheduler.runNow('audit.systemLogRetention');
    expect(run.ran).toBe(true);
    expect(await s.sql(`SELECT 1 FROM system_logs WHERE message LIKE $1`, [`${tag}%`])).toEqual([]);
  });
});
