import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { databaseUrl } from '../../support/global-setup.js';

/**
 * `npm run migrate` (the compiled CLI, as a separate process) against an empty database
 * leaves what `npm start` would: the schema, the reference data and the application's own
 * database role with its grants, so instances can then start against a prepared database.
 */
const run = promisify(execFile);
const name = `steward_migrate_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
const role = `${name}_app`;
let admin: pg.Client;
let db: pg.Client;

beforeAll(async () => {
  admin = new pg.Client({ connectionString: inject('adminUrl') });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
});
afterAll(async () => {
  await db?.end();
  await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await admin.query(`DROP ROLE IF EXISTS "${role}"`);
  await admin.end();
});

describe('npm run migrate', () => {
  it("creates and grants the application's database role, as npm start does", async () => {
    const url = databaseUrl(inject('adminUrl'), name);
    const env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: url,
      DATABASE_APP_ROLE: 'auto',
      TOKEN_SIGNING_KEY: 'steward-test-signing-key-0123456789abcdef',
      ENCRYPTION_MASTER_KEY: randomBytes(32).toString('base64'),
      LOG_LEVEL: 'warn',
    };
    const first = await run(process.execPath, ['dist/src/cli/migrate.js', 'up'], { env, timeout: 120_000 });
    expect(first.stdout).toContain('applied: Migration');
    expect(first.stdout).toContain(`application role: ${role}`);

    db = new pg.Client({ connectionString: url });
    await db.connect();
    const [r] = (
      await db.query(
        `SELECT rolsuper, rolbypassrls, rolcanlogin,
                has_table_privilege($1, 'tasks', 'SELECT, INSERT, UPDATE, DELETE') AS works,
                has_table_privilege($1, 'audit_events', 'INSERT') AS audits,
                has_table_privilege($1, 'audit_events', 'DELETE') AS deletes_audit,
                has_table_privilege($1, 'audit_events', 'TRUNCATE') AS truncates_audit,
                has_table_privilege($1, 'organisation_settings', 'SELECT') AS reads_new_tables,
                (SELECT count(*)::int FROM pg_class c WHERE c.relowner = r.oid) AS owns
           FROM pg_roles r WHERE r.rolname = $1`,
        [role],
      )
    ).rows;
    expect(r).toEqual({
      rolsuper: false,
      rolbypassrls: false,
      rolcanlogin: true,
      works: true,
      audits: true,
      deletes_audit: false,
      truncates_audit: false,
      reads_new_tables: true,
      owns: 0,
    });
    // Reference data too, as at a start.
    expect((await db.query(`SELECT count(*)::int AS n FROM agents`)).rows[0].n).toBeGreaterThan(0);

    // Run again: nothing to apply, the role kept.
    const again = await run(process.execPath, ['dist/src/cli/migrate.js', 'up'], { env, timeout: 120_000 });
    expect(again.stdout).toContain('database is up to date');
    expect(again.stdout).toContain(`application role: ${role}`);
  }, 180_000);
});
