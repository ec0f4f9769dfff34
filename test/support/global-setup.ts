import 'reflect-metadata';

import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { TestProject } from 'vitest/node';

import { createDatabaseIfMissing } from '../../src/db/database.js';
import { startEmbeddedPostgres } from '../../src/db/embedded.js';
import { connectOrm, migrate } from '../../src/db/orm.js';
import { seedReferenceData } from '../../src/db/seed.js';

export const TEMPLATE = 'steward_template';

/** The same server's URL with another database. */
export function databaseUrl(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the test cluster's `postgres` database. */
    adminUrl: string;
  }
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });

/**
 * One PostgreSQL for the whole run: TEST_DATABASE_URL's server when given (its user
 * must be allowed to create databases), otherwise an embedded one in a temporary
 * directory. A template database is migrated and seeded once; every test file then
 * clones its own database from it (see ./server.ts), so files are isolated and
 * order-independent.
 */
export default async function setup(project: TestProject) {
  let adminUrl: string;
  let stop = async () => {};
  if (process.env.TEST_DATABASE_URL) {
    const u = new URL(process.env.TEST_DATABASE_URL);
    u.pathname = '/postgres';
    adminUrl = u.toString();
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'steward-test-pg-'));
    chmodSync(dir, 0o755); // PostgreSQL runs as the `postgres` OS user when we are root
    const server = await startEmbeddedPostgres({
      dataDir: join(dir, 'data'),
      port: await freePort(),
      persistent: false,
    });
    adminUrl = server.url('postgres');
    stop = async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    };
  }

  const pg = (await import('pg')).default;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${TEMPLATE} WITH (FORCE)`);
  await admin.end();
  await createDatabaseIfMissing(adminUrl, TEMPLATE);
  const templateUrl = databaseUrl(adminUrl, TEMPLATE);
  const orm = await connectOrm(templateUrl, 2);
  await migrate(orm);
  await seedReferenceData(orm.em.fork() as EntityManager);
  await orm.close();

  project.provide('adminUrl', adminUrl);
  return stop;
}
