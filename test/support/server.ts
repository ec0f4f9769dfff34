import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';

import { loadConfig, type Config } from '../../src/config.js';
import { startApp, type App, type AppOptions } from '../../src/server/app.js';
import { databaseUrl, TEMPLATE } from './global-setup.js';

export interface TestServer {
  app: App;
  config: Config;
  /** http://127.0.0.1:port/graphql */
  url: string;
  /** ws://127.0.0.1:port/graphql */
  wsUrl: string;
  /** This server's database (superuser), for assertions and privileged setup. */
  dbUrl: string;
  /** A query as the database superuser. */
  sql<T = Record<string, unknown>>(text: string, values?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

/** Fixed test secrets: nothing is generated or written outside the temp dir. */
const SECRETS = {
  TOKEN_SIGNING_KEY: 'steward-test-signing-key-0123456789abcdef',
  ENCRYPTION_MASTER_KEY: randomBytes(32).toString('base64'),
};

async function createDatabase(name: string) {
  const admin = new pg.Client({ connectionString: inject('adminUrl') });
  await admin.connect();
  try {
    // Two files cloning the template at the same moment: PostgreSQL refuses the second while the first copies.
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.query(`CREATE DATABASE "${name}" TEMPLATE ${TEMPLATE}`);
        return;
      } catch (err) {
        if ((err as { code?: string }).code !== '55006' || attempt > 50) throw err;
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
      }
    }
  } finally {
    await admin.end();
  }
}

async function dropDatabase(name: string) {
  const admin = new pg.Client({ connectionString: inject('adminUrl') });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).finally(() => admin.end());
}

export interface TestServerOptions {
  /** Settings on top of the test defaults (environment-variable names and string values). */
  env?: Record<string, string>;
  /** Run a second instance on this server's database (instances sharing one PostgreSQL). */
  shareDatabaseWith?: TestServer;
  appOptions?: AppOptions;
}

/**
 * A real Steward on a free port with its own database cloned from the migrated
 * template. Register `close` (afterAll) to stop it and drop the database.
 */
export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const owned = !opts.shareDatabaseWith;
  const name = opts.shareDatabaseWith
    ? new URL(opts.shareDatabaseWith.dbUrl).pathname.slice(1)
    : `t_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  if (owned) await createDatabase(name);
  const dbUrl = databaseUrl(inject('adminUrl'), name);
  const config = loadConfig({
    NODE_ENV: 'test',
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    STEWARD_HOME: mkdtempSync(join(tmpdir(), 'steward-home-')),
    JOBS_ENABLED: 'false',
    DB_POOL_SIZE: '5',
    // Every test signs up, signs in and resets from 127.0.0.1: the per-hour limits are
    // tested in test/e2e/identity/rate-limits.test.ts, with limits of its own.
    AUTH_IP_LIMIT_PER_HOUR: '1000000',
    AUTH_ACCOUNT_LIMIT_PER_HOUR: '1000000',
    ...SECRETS,
    ...(opts.shareDatabaseWith ? { ENCRYPTION_MASTER_KEY: opts.shareDatabaseWith.config.ENCRYPTION_MASTER_KEY } : {}),
    ...opts.env,
  });
  const app = await startApp(config, { databaseUrl: dbUrl, migrate: false, ...opts.appOptions });
  const pool = new pg.Pool({ connectionString: dbUrl, max: 2 });
  // Dropping the database (WITH FORCE) may terminate a connection still closing: not a test failure.
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  return {
    app,
    config,
    url: `${app.url}/graphql`,
    wsUrl: `${app.url.replace(/^http/, 'ws')}/graphql`,
    dbUrl,
    sql: async (text, values) => (await pool.query(text, values)).rows,
    async close() {
      await app.close();
      await pool.end();
      if (owned) await dropDatabase(name);
    },
  };
}
