import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';

import { migrationsList } from '../../../migrations/index.js';
import { loadConfig } from '../../../src/config.js';
import { startApp, type App } from '../../../src/server/app.js';
import { databaseUrl } from '../../support/global-setup.js';

const name = `t_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
const apps: App[] = [];
const admin = () => new pg.Client({ connectionString: inject('adminUrl') });

afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  const c = admin();
  await c.connect();
  await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).finally(() => c.end());
});

describe('migrations', () => {
  it('are applied once when two instances start together on an empty database', async () => {
    const c = admin();
    await c.connect();
    await c.query(`CREATE DATABASE "${name}"`).finally(() => c.end());
    const env = {
      NODE_ENV: 'test',
      PORT: '0',
      LOG_LEVEL: 'silent',
      JOBS_ENABLED: 'false',
      TOKEN_SIGNING_KEY: 'steward-test-signing-key-0123456789abcdef',
      ENCRYPTION_MASTER_KEY: randomBytes(32).toString('base64'),
    };
    const url = databaseUrl(inject('adminUrl'), name);
    const start = () =>
      startApp(loadConfig({ ...env, STEWARD_HOME: mkdtempSync(join(tmpdir(), 'steward-home-')) }), {
        databaseUrl: url,
        migrate: true,
      });
    const results = await Promise.allSettled([start(), start()]);
    for (const r of results) if (r.status === 'fulfilled') apps.push(r.value);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);

    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      const { rows } = await db.query('SELECT name FROM mikro_orm_migrations ORDER BY id');
      expect(rows.map((r) => r.name)).toEqual(migrationsList.map((m) => m.name));
      const templates = await db.query('SELECT count(*)::int AS n FROM project_templates');
      expect(templates.rows[0].n).toBe(4); // reference data seeded once, not twice
    } finally {
      await db.end();
    }
    for (const a of apps) expect((await fetch(`${a.url}/readyz`)).status).toBe(200);
  });
});
