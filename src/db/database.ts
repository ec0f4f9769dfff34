import { resolve } from 'node:path';
import pg from 'pg';

import type { Config } from '../config.js';
import type { Logger } from '../shared/logger.js';
import { startEmbeddedPostgres } from './embedded.js';

export interface Database {
  url: string;
  /** Stops the embedded server, if one was started. */
  stop(): Promise<void>;
  embedded: boolean;
}

const DB_NAME = 'steward';

/** DATABASE_URL when given; otherwise an embedded PostgreSQL under STEWARD_HOME, database `steward`. */
export async function openDatabase(config: Config, logger: Logger): Promise<Database> {
  if (config.DATABASE_URL) return { url: config.DATABASE_URL, stop: async () => {}, embedded: false };
  const started = Date.now();
  const server = await startEmbeddedPostgres({
    dataDir: resolve(config.STEWARD_HOME, 'pgdata'),
    port: config.EMBEDDED_PG_PORT,
    persistent: true,
    logger,
  });
  await createDatabaseIfMissing(server.url('postgres'), DB_NAME);
  logger.info({ module: 'db', port: config.EMBEDDED_PG_PORT, ms: Date.now() - started }, 'embedded PostgreSQL started');
  return { url: server.url(DB_NAME), stop: () => server.stop(), embedded: true };
}

export async function createDatabaseIfMissing(adminUrl: string, name: string, template?: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) await client.query(`CREATE DATABASE "${name}"${template ? ` TEMPLATE "${template}"` : ''}`);
  } finally {
    await client.end();
  }
}
