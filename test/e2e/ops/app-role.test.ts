import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { VerifyAuditChainDocument } from '../../generated/graphql.js';
import { ok } from '../../support/client.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { createUser, firstAdmin, type TestUser } from '../../support/users.js';

/**
 * Steward started as `npm start` does (migrations on): migrations run as DATABASE_URL's
 * user, the application itself as a role that cannot rewrite the audit trail.
 */
let s: TestServer;
let admin: TestUser;
beforeAll(async () => {
  s = await startTestServer({ appOptions: { migrate: true } });
  admin = await firstAdmin(s);
  await createUser(s, admin); // audited: an invitation, a sign-up
});
afterAll(() => s?.close());

/** A statement on the application's own pool, i.e. as its database role. */
const asApp = async (text: string) => (await s.app.runtime.db.pool.query(text)).rows;
const refusedAsApp = async (text: string) => {
  const err = await asApp(text).then(
    () => null,
    (e: Error & { code?: string }) => e,
  );
  expect(err, text).not.toBeNull();
  return err!;
};

describe('the application database role', () => {
  it('is its own login role: no superuser, owns nothing, is no member of the owner', async () => {
    const [me] = await asApp(`SELECT current_user AS name, r.rolsuper, r.rolbypassrls, r.rolcreaterole,
        (SELECT count(*)::int FROM pg_class c WHERE c.relowner = r.oid) AS owns
      FROM pg_roles r WHERE r.rolname = current_user`);
    const db = new URL(s.dbUrl).pathname.slice(1);
    expect(me).toEqual({ name: `${db}_app`, rolsuper: false, rolbypassrls: false, rolcreaterole: false, owns: 0 });
    const [owner] = await s.sql<{ m: boolean }>(
      `SELECT pg_has_role($1, (SELECT relowner FROM pg_class WHERE relname = 'audit_events')::regrole::text, 'MEMBER') AS m`,
      [`${db}_app`],
    );
    expect(owner!.m).toBe(false);
  });

  it('cannot change, delete or truncate audit events, nor switch off the triggers that guard them', async () => {
    await ok(s.url, VerifyAuditChainDocument, {}, admin.token); // everything sealed
    expect(
      (await s.sql<{ n: number }>(`SELECT count(*)::int AS n FROM audit_events WHERE seq IS NOT NULL`))[0]!.n,
    ).toBeGreaterThan(0);
    const attempts = [
      `UPDATE audit_events SET actor_label = 'someone else' WHERE seq = 1`,
      `DELETE FROM audit_events WHERE seq = 1`,
      `TRUNCATE audit_events`,
      `ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only`,
      `ALTER TABLE audit_events DISABLE TRIGGER ALL`,
      `SET session_replication_role = replica`,
      `DROP TABLE audit_events_default`,
      `ALTER TABLE audit_events DETACH PARTITION audit_events_default`,
      `CREATE OR REPLACE FUNCTION steward_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$`,
      `CREATE TABLE audit_events_shadow (id int)`,
      `DELETE FROM mikro_orm_migrations`,
    ];
    for (const text of attempts) {
      const err = await refusedAsApp(text);
      expect(['42501', '0A000'], `${text}: ${err.message}`).toContain(err.code); // insufficient_privilege (or not supported)
    }
    const partition = (
      await s.sql<{ name: string }>(
        `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'audit_events'::regclass LIMIT 1`,
      )
    )[0]!.name;
    expect((await refusedAsApp(`DELETE FROM ${partition}`)).code).toBe('42501');
    expect((await refusedAsApp(`UPDATE ${partition} SET actor_label = 'x'`)).code).toBe('42501');
    // And the chain still holds.
    expect((await ok(s.url, VerifyAuditChainDocument, {}, admin.token)).verifyAuditChain.ok).toBe(true);
  });

  it('still does what its jobs need: partitions ahead, prompt-log months, retention of prompt logs only', async () => {
    await asApp(`SELECT steward_audit_ensure_partitions(now(), 6)`);
    await asApp(`SELECT steward_prompt_log_partitions(4)`);
    const [dropped] = await asApp(`SELECT steward_drop_prompt_log_partition('audit_events_default') AS ok`);
    expect(dropped!.ok).toBe(false);
    expect(await s.sql(`SELECT 1 FROM pg_class WHERE relname = 'audit_events_default'`)).toHaveLength(1);
    // The jobs themselves, run by the application (as its role).
    await s.sql(
      `CREATE TABLE IF NOT EXISTS prompt_logs_2001_01 PARTITION OF prompt_logs FOR VALUES FROM ('2001-01-01 00:00:00+00') TO ('2001-02-01 00:00:00+00')`,
    );
    const prompts = await s.app.runtime.scheduler.runNow('ai.promptLogPartitions');
    expect(prompts).toMatchObject({ ran: true, result: { dropped: ['prompt_logs_2001_01'] } });
    expect((await s.app.runtime.scheduler.runNow('audit.partitions')).ran).toBe(true);
    expect((await s.app.runtime.scheduler.runNow('audit.seal')).ran).toBe(true);
  });
});
