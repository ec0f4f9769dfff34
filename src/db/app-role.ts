import { createHmac } from 'node:crypto';
import pg from 'pg';

import type { Logger } from '../shared/logger.js';

/** Tables the application may add to but never rewrite: no DELETE (UPDATE is left to the sealer, which the append-only trigger restricts to linking). */
const APPEND_ONLY = ['audit_events'];

export interface AppRoleOptions {
  /** DATABASE_APP_ROLE: a role name, `auto` (`<database>_app`) or `off`. */
  setting: string;
  /** The app role's password is derived from this secret (every instance derives the same one). */
  secret: string;
  logger?: Logger;
}

/** Thrown when the app role cannot be arranged; the message says what to do. */
export class AppRoleError extends Error {
  override name = 'AppRoleError';
}

/**
 * The role the application connects as, arranged by the schema's owner at migrate
 * time: a login role that is no superuser, owns nothing and is no member of the owner,
 * so it cannot disable the audit trail's append-only triggers, alter or drop its
 * tables, or set session_replication_role. It gets SELECT/INSERT/UPDATE/DELETE on the
 * tables (no TRUNCATE, TRIGGER or REFERENCES), no DELETE on the audit events, no
 * CREATE in the schema, read-only access to the migrations table; schema changes its
 * jobs need go through owner functions (steward_*_partitions). Run on every start,
 * after the migrations, so tables added by a later migration are granted too.
 *
 * Answers the URL to connect with (the owner's URL when the setting is `off`).
 */
export async function ensureAppRole(ownerUrl: string, opts: AppRoleOptions): Promise<string> {
  if (opts.setting === 'off') return ownerUrl;
  const url = new URL(ownerUrl);
  const database = decodeURIComponent(url.pathname.slice(1)) || 'postgres';
  const role = opts.setting === 'auto' ? `${database}_app`.slice(0, 63) : opts.setting;
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(role))
    throw new AppRoleError(
      `DATABASE_APP_ROLE: "${role}" must be lower-case letters, digits and _ (set DATABASE_APP_ROLE to a valid name, or off)`,
    );
  const password = createHmac('sha256', opts.secret).update(`steward:database-app-role:${role}`).digest('base64url');

  const client = new pg.Client({ connectionString: ownerUrl });
  await client.connect();
  try {
    const owner = (await client.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u;
    if (owner === role)
      throw new AppRoleError(
        `DATABASE_APP_ROLE (${role}) is the user of DATABASE_URL; give DATABASE_URL the schema's owner`,
      );
    // One instance at a time (concurrent GRANTs collide), under the migrations' lock.
    await client.query('BEGIN');
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('steward:migrations'))`);
    await upsertRole(client, role, password, owner);
    await grantPrivileges(client, database, role, owner);
    opts.logger?.info({ module: 'db', role }, 'the application connects as its own database role');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    await client.end();
  }
  url.username = role;
  url.password = password;
  return url.toString();
}

/** Creates the role, or sets its password; refuses one that could bypass the rules (superuser, BYPASSRLS, member of the owner). */
async function upsertRole(client: pg.Client, role: string, password: string, owner: string): Promise<void> {
  const id = client.escapeIdentifier(role);
  const existing = (
    await client.query<{ rolsuper: boolean; rolbypassrls: boolean }>(
      'SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1',
      [role],
    )
  ).rows[0];
  try {
    if (!existing)
      await client.query(
        `CREATE ROLE ${id} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT PASSWORD ${client.escapeLiteral(password)}`,
      );
    else await client.query(`ALTER ROLE ${id} LOGIN PASSWORD ${client.escapeLiteral(password)}`);
  } catch (err) {
    throw new AppRoleError(
      `Could not ${existing ? 'update' : 'create'} the database role ${role} as ${owner} (${(err as Error).message}): grant ${owner} CREATEROLE, create the role yourself, or set DATABASE_APP_ROLE=off`,
    );
  }
  if (existing?.rolsuper || existing?.rolbypassrls)
    throw new AppRoleError(
      `The database role ${role} is a superuser or bypasses row security: the application must not run as it; remove those attributes or set DATABASE_APP_ROLE to another name`,
    );
  const member = (await client.query<{ m: boolean }>(`SELECT pg_has_role($1, $2, 'MEMBER') AS m`, [role, owner]))
    .rows[0]!.m;
  if (member)
    throw new AppRoleError(
      `The database role ${role} is a member of ${owner}, so it could act as the owner: revoke that membership or set DATABASE_APP_ROLE to another name`,
    );
}

/**
 * Data rights on every table (again on each start, so a later migration's tables are
 * covered), none on the schema itself or the migrations' ledger, and no DELETE on the
 * append-only tables and their partitions; then commits.
 */
async function grantPrivileges(client: pg.Client, database: string, role: string, owner: string): Promise<void> {
  const id = client.escapeIdentifier(role);
  const db = client.escapeIdentifier(database);
  const statements = [
    `GRANT CONNECT, TEMPORARY ON DATABASE ${db} TO ${id}`,
    `GRANT USAGE ON SCHEMA public TO ${id}`,
    `REVOKE CREATE ON SCHEMA public FROM ${id}`,
    `REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ${id}`,
    `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${id}`,
    `GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO ${id}`,
    `GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO ${id}`,
    `REVOKE INSERT, UPDATE, DELETE ON mikro_orm_migrations FROM ${id}`,
    `REVOKE INSERT, DELETE ON audit_chain_head FROM ${id}`,
  ];
  for (const table of APPEND_ONLY) {
    const parts = (
      await client.query<{ name: string }>(
        `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = $1`,
        [table],
      )
    ).rows.map((r) => r.name);
    for (const t of [table, ...parts]) statements.push(`REVOKE DELETE ON ${client.escapeIdentifier(t)} FROM ${id}`);
  }
  try {
    for (const s of statements) await client.query(s);
    // PostgreSQL < 15 lets everyone create in public; only the schema's owner can change that, so it is tried, not required.
    await client.query('SAVEPOINT public_create');
    await client
      .query('REVOKE CREATE ON SCHEMA public FROM PUBLIC')
      .catch(() => client.query('ROLLBACK TO SAVEPOINT public_create'));
    await client.query('COMMIT');
  } catch (err) {
    throw new AppRoleError(
      `Could not grant the database role ${role} its privileges as ${owner} (${(err as Error).message}): DATABASE_URL must be the schema's owner, or set DATABASE_APP_ROLE=off`,
    );
  }
}
