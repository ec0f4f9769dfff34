import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

import { createDatabaseIfMissing } from '../src/db/database.js';
import { startEmbeddedPostgres } from '../src/db/embedded.js';

export interface BenchDatabase {
  /** Superuser URL of the database Steward runs on. */
  url: string;
  /** Name of that database (pg_stat_statements is filtered by it). */
  name: string;
  /** Superuser client on the `postgres` database: statistics, never Steward's data. */
  admin: pg.Client;
  /** The server's (postmaster's) process id, for CPU accounting. */
  pid(): number | undefined;
  /** Stops the server and deletes its temporary directory. Safe to call twice. */
  stop(): Promise<void>;
}

export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

const withDatabase = (url: string, name: string) => {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
};

/**
 * A throw-away embedded PostgreSQL in a temporary directory, on a free port, with
 * pg_stat_statements loaded so the bench can count the statements of a request and
 * the time PostgreSQL spent executing them. Nothing survives `stop()`. `durable`: commits
 * reach the disk (fsync on), as in production, where a throw-away cluster skips it.
 */
export async function startBenchDatabase(
  name = 'steward_bench',
  opts: { durable?: boolean } = {},
): Promise<BenchDatabase> {
  const dir = mkdtempSync(join(tmpdir(), 'steward-bench-pg-'));
  chmodSync(dir, 0o755); // as root PostgreSQL runs as the `postgres` OS user and must reach its data dir
  // On Ctrl-C the embedded server is stopped by its exit hook (src/db/embedded.ts); remove the directory then too.
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  let server: Awaited<ReturnType<typeof startEmbeddedPostgres>> | undefined;
  let admin: pg.Client | undefined;
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      await admin?.end().catch(() => {});
      await server?.stop().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    })());
  try {
    server = await startEmbeddedPostgres({
      dataDir: join(dir, 'data'),
      port: await freePort(),
      persistent: false,
      settings: {
        shared_preload_libraries: 'pg_stat_statements',
        'pg_stat_statements.track': 'all',
        'pg_stat_statements.track_utility': 'on',
        ...(opts.durable ? { fsync: 'on' } : {}),
      },
    });
    const adminUrl = server.url('postgres');
    admin = new pg.Client({ connectionString: adminUrl });
    admin.on('error', () => {}); // the server going away at the end (or on Ctrl-C) is not a crash
    await admin.connect();
    // The view lives where the extension is created; it shows every database's statements.
    await admin.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await createDatabaseIfMissing(adminUrl, name);
    const pid = () => {
      try {
        return Number(readFileSync(join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n', 1)[0]) || undefined;
      } catch {
        return undefined;
      }
    };
    return { url: withDatabase(adminUrl, name), name, admin, pid, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export interface StatementStats {
  /** Statements executed (BEGIN/COMMIT included). */
  calls: number;
  /** Milliseconds PostgreSQL spent executing them. */
  execMs: number;
}

/** Forget every statement counted so far (all databases). */
export async function resetStatements(db: BenchDatabase): Promise<void> {
  await db.admin.query('SELECT pg_stat_statements_reset()');
}

/** Statements run on the bench database since the last reset. */
export async function readStatements(db: BenchDatabase): Promise<StatementStats> {
  const { rows } = await db.admin.query<{ calls: string; ms: number }>(
    `SELECT coalesce(sum(s.calls), 0) AS calls, coalesce(sum(s.total_exec_time), 0)::float8 AS ms
       FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
      WHERE d.datname = $1`,
    [db.name],
  );
  return { calls: Number(rows[0]!.calls), execMs: rows[0]!.ms };
}

/** The statements themselves since the last reset, most frequent first (BENCH_VERBOSE). */
export async function listStatements(
  db: BenchDatabase,
): Promise<{ calls: number; query: string; meanMs: number; rowsPerCall: number }[]> {
  const { rows } = await db.admin.query<{ calls: string; query: string; mean_ms: number; rows: string }>(
    `SELECT s.calls, s.query, s.mean_exec_time::float8 AS mean_ms, s.rows FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
      WHERE d.datname = $1 ORDER BY s.calls DESC, s.query`,
    [db.name],
  );
  return rows.map((r) => ({
    calls: Number(r.calls),
    query: r.query,
    meanMs: r.mean_ms,
    rowsPerCall: Number(r.rows) / Number(r.calls),
  }));
}
