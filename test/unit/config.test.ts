import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { ConfigError, loadConfig } from '../../src/config.js';

const home = () => mkdtempSync(join(tmpdir(), 'steward-config-'));

describe('settings', () => {
  it('start with no settings at all in development, generating the secrets once and keeping them', () => {
    const dir = home();
    const first = loadConfig({ STEWARD_HOME: dir });
    expect(first.PORT).toBe(4000);
    expect(first.DATABASE_URL).toBeUndefined();
    expect(Buffer.from(first.ENCRYPTION_MASTER_KEY, 'base64')).toHaveLength(32);
    const again = loadConfig({ STEWARD_HOME: dir });
    expect(again.TOKEN_SIGNING_KEY).toBe(first.TOKEN_SIGNING_KEY);
    expect(again.ENCRYPTION_MASTER_KEY).toBe(first.ENCRYPTION_MASTER_KEY);
    const file = join(dir, 'secrets.json');
    expect(JSON.parse(readFileSync(file, 'utf8')).TOKEN_SIGNING_KEY).toBe(first.TOKEN_SIGNING_KEY);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('refuse to start in production without the secrets, naming each one', () => {
    const dir = home();
    expect(() => loadConfig({ NODE_ENV: 'production', STEWARD_HOME: dir })).toThrow(ConfigError);
    expect(() => loadConfig({ NODE_ENV: 'production', STEWARD_HOME: dir })).toThrow(
      /TOKEN_SIGNING_KEY, ENCRYPTION_MASTER_KEY/,
    );
    expect(() => loadConfig({ NODE_ENV: 'production', STEWARD_HOME: dir, TOKEN_SIGNING_KEY: 'x'.repeat(40) })).toThrow(
      /ENCRYPTION_MASTER_KEY/,
    );
  });

  it('start in production when the secrets are given, and never write them to disk', () => {
    const dir = home();
    const c = loadConfig({
      NODE_ENV: 'production',
      STEWARD_HOME: dir,
      TOKEN_SIGNING_KEY: 'k'.repeat(40),
      ENCRYPTION_MASTER_KEY: Buffer.alloc(32, 7).toString('base64'),
    });
    expect(c.isProduction).toBe(true);
    expect(() => statSync(join(dir, 'secrets.json'))).toThrow();
  });

  it('reject invalid values with a message naming the variable', () => {
    expect(() => loadConfig({ STEWARD_HOME: home(), PORT: 'eighty' })).toThrow(/PORT/);
    expect(() => loadConfig({ STEWARD_HOME: home(), EMBEDDED_PG_PORT: '5432' })).toThrow(/EMBEDDED_PG_PORT/);
    expect(() => loadConfig({ STEWARD_HOME: home(), DATABASE_URL: 'not a url' })).toThrow(/DATABASE_URL/);
    expect(() => loadConfig({ STEWARD_HOME: home(), ENCRYPTION_MASTER_KEY: 'c2hvcnQ=' })).toThrow(
      /ENCRYPTION_MASTER_KEY/,
    );
    expect(() => loadConfig({ STEWARD_HOME: home(), ARGON2_MEMORY_KIB: '1024' })).toThrow(/ARGON2_MEMORY_KIB/);
  });
});
