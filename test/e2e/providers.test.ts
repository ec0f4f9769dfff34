import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { rotateMasterKeys } from '../../src/cli/rotate-keys.js';
import { loadConfig, masterKeys } from '../../src/config.js';
import { countTokens, LlmCallError, LOCAL_MODEL } from '../../src/modules/billing/index.js';
import { PROVIDER_HEALTH_JOB } from '../../src/modules/billing/provider-health.js';
import type { ProviderService } from '../../src/modules/billing/provider.service.js';
import { Envelope, type SealedSecret } from '../../src/shared/crypto.js';
import { codes, gql, ok, subscribe, wsClient, wsExecute } from '../support/client.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, unique, type TestUser } from '../support/users.js';
import { busListeners } from '../support/wait.js';

/**
 * Providers end to end: administration over real HTTP, keys encrypted at rest (read
 * back with SQL), the OpenAI client against a local OpenAI-compatible server, the
 * LOCAL model, the call path's choices, key rotation and the health job with its
 * subscription. The pipeline that meters calls is tested in metering.test.ts.
 */
let s: TestServer;
let fake: FakeOpenAI;
let admin: TestUser;
let user: TestUser;
let observer: TestUser;
let providers: ProviderService;

beforeAll(async () => {
  fake = await startFakeOpenAI();
  s = await startTestServer({ env: { PROVIDER_UNHEALTHY_AFTER: '3' } });
  admin = await firstAdmin(s);
  [user, observer] = await Promise.all([createUser(s, admin), createUser(s, admin, 'OBSERVER')]);
  providers = s.app.runtime.services.providers;
});
afterAll(async () => {
  await s?.close();
  await fake?.close();
});

const FIELDS =
  'id name providerType modelName apiEndpoint active platformProvided inputCostPer1k outputCostPer1k maxTokens timeoutSeconds platformKeyLast4 hasPlatformKey';
const CREATE = `mutation($input: CreateProviderInput!) { createProvider(input: $input) { ${FIELDS} } }`;
const UPDATE = `mutation($input: UpdateProviderInput!) { updateProvider(input: $input) { ${FIELDS} } }`;
const SET_KEY = `mutation($input: SetMyProviderKeyInput!) { setMyProviderKey(input: $input) { id last4 active provider { id name } } }`;
const DELETE_KEY = `mutation($id: ID!) { deleteMyProviderKey(providerId: $id) }`;
const LIST = `query($where: ProviderWhere) { providers(first: 100, where: $where) { totalCount edges { node { ${FIELDS} health { isHealthy } } } } }`;

/** A key no other test uses, long enough to be recognised anywhere. */
const newKey = (prefix = 'sk-test') => `${prefix}-${randomBytes(18).toString('hex')}`;

interface ProviderInput {
  name?: string;
  providerType?: string;
  modelName?: string;
  apiEndpoint?: string | null;
  apiKey?: string | null;
  inputCostPer1k?: unknown;
  outputCostPer1k?: unknown;
  maxTokens?: number;
  timeoutSeconds?: number;
  active?: boolean;
  platformProvided?: boolean;
}

/** An OPENAI provider behind `endpoint` (the fake server by default), created by the admin. */
async function createProvider(input: ProviderInput = {}, endpoint: FakeOpenAI = fake) {
  const r = await ok(
    s.url,
    CREATE,
    {
      input: {
        name: unique('provider-'),
        providerType: 'OPENAI',
        modelName: 'gpt-fake',
        apiEndpoint: endpoint.baseURL,
        inputCostPer1k: '0.001000',
        outputCostPer1k: '0.002000',
        timeoutSeconds: 5,
        ...input,
      },
    },
    admin.token,
  );
  return r.createProvider as Record<string, any> & { id: string };
}

/** Deactivates the providers a test made, so that the next tests' default choices are their own. */
const deactivate = (...ids: string[]) =>
  Promise.all(ids.map((id) => ok(s.url, UPDATE, { input: { id, active: false } }, admin.token)));

/** Every row of every table of the database as text, searched for `needle`. */
async function tablesContaining(needle: string): Promise<string[]> {
  const tables = await s.sql<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition`,
  );
  const found: string[] = [];
  for (const { name } of tables) {
    const [row] = await s.sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${name}" t WHERE t::text LIKE $1`, [
      `%${needle}%`,
    ]);
    if (row!.n > 0) found.push(name);
  }
  return found;
}

describe('provider administration', () => {
  it('lets an admin create a provider, with prices as exact decimals', async () => {
    const p = await createProvider({ inputCostPer1k: '0.5', outputCostPer1k: '12', maxTokens: 256 });
    expect(p).toMatchObject({
      providerType: 'OPENAI',
      inputCostPer1k: '0.500000',
      outputCostPer1k: '12.000000',
      maxTokens: 256,
      timeoutSeconds: 5,
      active: true,
      platformProvided: true,
      platformKeyLast4: null,
      hasPlatformKey: false,
    });
    const [row] = await s.sql<{ input: string; output: string }>(
      `SELECT input_cost_per1k::text AS input, output_cost_per1k::text AS output FROM providers WHERE id = $1`,
      [p.id],
    );
    expect(row).toEqual({ input: '0.500000', output: '12.000000' });
    const [audit] = await s.sql<{ action: string; actor_id: string }>(
      `SELECT action, actor_id FROM audit_events WHERE entity_id = $1`,
      [p.id],
    );
    expect(audit).toEqual({ action: 'provider.create', actor_id: admin.id });
    await deactivate(p.id);
  });

  it('refuses createProvider to users and observers with FORBIDDEN', async () => {
    for (const who of [user, observer]) {
      const r = await gql(
        s.url,
        CREATE,
        {
          input: {
            name: unique('p-'),
            providerType: 'LOCAL',
            modelName: LOCAL_MODEL,
            inputCostPer1k: '0',
            outputCostPer1k: '0',
          },
        },
        who.token,
      );
      expect(codes(r)).toEqual(['FORBIDDEN']);
    }
    expect(
      codes(
        await gql(s.url, UPDATE, { input: { id: '00000000-0000-0000-0000-000000000000', active: false } }, user.token),
      ),
    ).toEqual(['FORBIDDEN']);
  });

  it('refuses prices that are negative, finer than a micro-dollar, floats or not numbers', async () => {
    for (const price of ['-1', '0.0000001', '1e3', 'abc', '', 0.5, '1,5']) {
      const r = await gql(
        s.url,
        CREATE,
        {
          input: {
            name: unique('p-'),
            providerType: 'LOCAL',
            modelName: LOCAL_MODEL,
            inputCostPer1k: price,
            outputCostPer1k: '0',
          },
        },
        admin.token,
      );
      expect(codes(r), JSON.stringify(price)).toEqual(['BAD_USER_INPUT']);
    }
    const literal = await gql(
      s.url,
      `mutation { createProvider(input: { name: "x", providerType: LOCAL, modelName: "m", inputCostPer1k: "-0.5", outputCostPer1k: "0" }) { id } }`,
      {},
      admin.token,
    );
    expect(literal.errors).toHaveLength(1);
  });

  it('refuses a duplicate name, a bad endpoint, and an endpoint or key for LOCAL', async () => {
    const p = await createProvider();
    expect(
      codes(
        await gql(
          s.url,
          CREATE,
          {
            input: {
              name: p.name,
              providerType: 'OPENAI',
              modelName: 'm',
              apiEndpoint: fake.baseURL,
              inputCostPer1k: '0',
              outputCostPer1k: '0',
            },
          },
          admin.token,
        ),
      ),
    ).toEqual(['CONFLICT']);
    const bad = [
      { providerType: 'OPENAI', apiEndpoint: 'ftp://example.test/v1' },
      { providerType: 'OPENAI', apiEndpoint: 'not a url' },
      { providerType: 'OPENAI', apiEndpoint: 'http://user:secret@example.test/v1' },
      { providerType: 'LOCAL', apiEndpoint: 'http://127.0.0.1:1/v1' },
      { providerType: 'LOCAL', apiKey: newKey() },
      { providerType: 'OPENAI', apiEndpoint: fake.baseURL, apiKey: 'short' },
      { providerType: 'OPENAI', apiEndpoint: fake.baseURL, apiKey: 'has a space in it' },
    ];
    for (const extra of bad) {
      const r = await gql(
        s.url,
        CREATE,
        { input: { name: unique('p-'), modelName: 'm', inputCostPer1k: '0', outputCostPer1k: '0', ...extra } },
        admin.token,
      );
      expect(codes(r), JSON.stringify(extra)).toEqual(['BAD_USER_INPUT']);
      expect(JSON.stringify(r.errors)).not.toContain('has a space');
    }
    await deactivate(p.id);
  });

  it('shows users the active providers only, without endpoint or key details', async () => {
    const key = newKey();
    const shown = await createProvider({ apiKey: key });
    const hidden = await createProvider({ active: false });
    const asAdmin = (await ok(s.url, LIST, {}, admin.token)).providers.edges.map((e: any) => e.node);
    expect(asAdmin.map((p: any) => p.id)).toEqual(expect.arrayContaining([shown.id, hidden.id]));
    expect(asAdmin.find((p: any) => p.id === shown.id)).toMatchObject({
      apiEndpoint: fake.baseURL,
      platformKeyLast4: key.slice(-4),
      hasPlatformKey: true,
    });
    expect(
      (await ok(s.url, LIST, { where: { active: false } }, admin.token)).providers.edges.map((e: any) => e.node.id),
    ).toContain(hidden.id);

    for (const who of [user, observer]) {
      const r = await ok(s.url, LIST, { where: { active: false } }, who.token);
      const list = r.providers.edges.map((e: any) => e.node);
      expect(list.map((p: any) => p.id)).toContain(shown.id);
      expect(list.map((p: any) => p.id)).not.toContain(hidden.id);
      expect(
        list.every(
          (p: any) => p.active && p.apiEndpoint === null && p.platformKeyLast4 === null && p.hasPlatformKey === false,
        ),
      ).toBe(true);
      expect(
        (await ok(s.url, `query($id: ID!) { provider(id: $id) { id } }`, { id: hidden.id }, who.token)).provider,
      ).toBeNull();
    }
    await deactivate(shown.id, hidden.id);
  });

  it('replaces, removes and never returns the platform key; deactivating hides the provider from users', async () => {
    const first = newKey();
    const second = newKey();
    const p = await createProvider({ apiKey: first });
    const replaced = (
      await ok(s.url, UPDATE, { input: { id: p.id, apiKey: second, inputCostPer1k: '0.25' } }, admin.token)
    ).updateProvider;
    expect(replaced).toMatchObject({ platformKeyLast4: second.slice(-4), inputCostPer1k: '0.250000' });
    const removed = (await ok(s.url, UPDATE, { input: { id: p.id, removeApiKey: true } }, admin.token)).updateProvider;
    expect(removed).toMatchObject({ platformKeyLast4: null, hasPlatformKey: false });
    const [row] = await s.sql<{ platform_key: unknown }>(`SELECT platform_key FROM providers WHERE id = $1`, [p.id]);
    expect(row!.platform_key).toBeNull();
    expect(
      codes(await gql(s.url, UPDATE, { input: { id: p.id, apiKey: newKey(), removeApiKey: true } }, admin.token)),
    ).toEqual(['BAD_USER_INPUT']);
    const audits = await s.sql<{ action: string; after: any }>(
      `SELECT action, after FROM audit_events WHERE entity_id = $1 ORDER BY created_at, id`,
      [p.id],
    );
    expect(audits.map((a) => a.action)).toEqual(['provider.create', 'provider.update', 'provider.update']);
    expect(audits.map((a) => a.after.platformKey)).toEqual([undefined, 'replaced', 'removed']);
    for (const k of [first, second]) expect(await tablesContaining(k)).toEqual([]);

    await deactivate(p.id);
    expect((await ok(s.url, LIST, {}, user.token)).providers.edges.map((e: any) => e.node.id)).not.toContain(p.id);
    expect(codes(await gql(s.url, SET_KEY, { input: { providerId: p.id, apiKey: newKey() } }, user.token))).toEqual([
      'NOT_FOUND',
    ]);
  });

  it('seeds the free built-in "Steward Local" provider', async () => {
    const [row] =
      await s.sql<any>(`SELECT p.provider_type, p.model_name, p.active, p.input_cost_per1k::text AS i, p.output_cost_per1k::text AS o, h.is_healthy
      FROM providers p LEFT JOIN provider_health h ON h.provider_id = p.id WHERE p.name = 'Steward Local'`);
    expect(row).toEqual({
      provider_type: 'LOCAL',
      model_name: LOCAL_MODEL,
      active: true,
      i: '0.000000',
      o: '0.000000',
      is_healthy: true,
    });
  });
});

describe('provider keys at rest', () => {
  it("stores the platform key and users' keys encrypted: the plain key appears nowhere in the database", async () => {
    const platform = newKey('sk-platform');
    const own = newKey('sk-own');
    const p = await createProvider({ apiKey: platform });
    const set = (await ok(s.url, SET_KEY, { input: { providerId: p.id, apiKey: own } }, user.token)).setMyProviderKey;
    expect(set).toMatchObject({ last4: own.slice(-4), active: true, provider: { id: p.id } });

    for (const k of [platform, own]) expect(await tablesContaining(k)).toEqual([]);
    const [prow] = await s.sql<{ platform_key: SealedSecret; platform_key_last4: string }>(
      `SELECT platform_key, platform_key_last4 FROM providers WHERE id = $1`,
      [p.id],
    );
    expect(prow!.platform_key).toMatchObject({ v: '1', dk: expect.any(String), ct: expect.any(String) });
    expect(prow!.platform_key_last4).toBe(platform.slice(-4));
    const [krow] = await s.sql<{ sealed: SealedSecret }>(
      `SELECT sealed FROM user_provider_keys WHERE user_id = $1 AND provider_id = $2`,
      [user.id, p.id],
    );
    expect(krow!.sealed.v).toBe('1');
    const audit = await s.sql<{ action: string; after: unknown }>(
      `SELECT action, after FROM audit_events WHERE entity_type = 'UserProviderKey' AND actor_id = $1`,
      [user.id],
    );
    expect(audit).toEqual([{ action: 'providerKey.set', after: { providerId: p.id, last4: own.slice(-4) } }]);
    await deactivate(p.id);
  });

  it('never returns a key, only its last four characters', async () => {
    const platform = newKey();
    const own = newKey();
    const p = await createProvider({ apiKey: platform });
    const answers = [
      await gql(s.url, SET_KEY, { input: { providerId: p.id, apiKey: own } }, user.token),
      await gql(s.url, `{ myProviderKeys { id last4 active provider { id name } } }`, {}, user.token),
      await gql(s.url, LIST, {}, admin.token),
      await gql(s.url, LIST, {}, user.token),
    ];
    for (const a of answers) {
      expect(a.errors).toBeUndefined();
      const text = JSON.stringify(a.data);
      expect(text).not.toContain(platform);
      expect(text).not.toContain(own);
    }
    expect(answers[1]!.data.myProviderKeys.find((k: any) => k.provider?.id === p.id)).toMatchObject({
      last4: own.slice(-4),
      active: true,
    });
    await deactivate(p.id);
  });

  it("replaces a user's key in place, deletes it on request, and keeps each user to their own keys", async () => {
    const p = await createProvider();
    const other = await createUser(s, admin);
    await ok(s.url, SET_KEY, { input: { providerId: p.id, apiKey: newKey() } }, user.token);
    const again = newKey();
    await ok(s.url, SET_KEY, { input: { providerId: p.id, apiKey: again } }, user.token);
    const rows = await s.sql<{ last4: string }>(
      `SELECT last4 FROM user_provider_keys WHERE user_id = $1 AND provider_id = $2`,
      [user.id, p.id],
    );
    expect(rows).toEqual([{ last4: again.slice(-4) }]);
    expect((await ok(s.url, `{ myProviderKeys { id } }`, {}, other.token)).myProviderKeys).toEqual([]);
    expect((await ok(s.url, DELETE_KEY, { id: p.id }, other.token)).deleteMyProviderKey).toBe(false);
    expect(
      await s.sql(`SELECT 1 FROM user_provider_keys WHERE user_id = $1 AND provider_id = $2`, [user.id, p.id]),
    ).toHaveLength(1);
    expect((await ok(s.url, DELETE_KEY, { id: p.id }, user.token)).deleteMyProviderKey).toBe(true);
    expect(
      await s.sql(`SELECT 1 FROM user_provider_keys WHERE user_id = $1 AND provider_id = $2`, [user.id, p.id]),
    ).toHaveLength(0);
    expect(codes(await gql(s.url, SET_KEY, { input: { providerId: p.id, apiKey: newKey() } }, observer.token))).toEqual(
      ['FORBIDDEN'],
    );
    const local = (await s.sql<{ id: string }>(`SELECT id FROM providers WHERE name = 'Steward Local'`))[0]!.id;
    expect(codes(await gql(s.url, SET_KEY, { input: { providerId: local, apiKey: newKey() } }, user.token))).toEqual([
      'BAD_USER_INPUT',
    ]);
    await deactivate(p.id);
  });

  it("refuses to decrypt a sealed key copied onto another row (the row's identity is bound to it)", async () => {
    const p = await createProvider({ apiKey: newKey(), platformProvided: false });
    const q = await createProvider({ apiKey: newKey() });
    const thief = await createUser(s, admin);
    await ok(s.url, SET_KEY, { input: { providerId: p.id, apiKey: newKey() } }, user.token);
    await ok(s.url, SET_KEY, { input: { providerId: p.id, apiKey: newKey() } }, thief.token);
    expect((await providers.resolveCall(thief.id, p.id)).keySource).toBe('USER');

    // The thief's row gets the user's sealed key: it does not open as the thief's.
    await s.sql(
      `UPDATE user_provider_keys SET sealed = (SELECT sealed FROM user_provider_keys WHERE user_id = $1 AND provider_id = $2) WHERE user_id = $3 AND provider_id = $2`,
      [user.id, p.id, thief.id],
    );
    await expect(providers.resolveCall(thief.id, p.id)).rejects.toMatchObject({
      code: 'CONFLICT',
      details: { reason: 'KEY_UNREADABLE' },
    });
    expect((await providers.resolveCall(user.id, p.id)).keySource).toBe('USER');

    // A platform key moved to another provider's row does not open there either.
    await s.sql(
      `UPDATE providers SET platform_key = (SELECT platform_key FROM providers WHERE id = $1) WHERE id = $2`,
      [p.id, q.id],
    );
    await expect(providers.resolveCall(user.id, q.id)).rejects.toMatchObject({
      code: 'CONFLICT',
      details: { reason: 'KEY_UNREADABLE' },
    });
    await deactivate(p.id, q.id);
  });

  it('re-wraps every sealed key with the new master key version (keys:rotate), leaving the secrets intact', async () => {
    const platform = newKey('sk-rotate');
    const own = newKey('sk-rotate-own');
    const p = await createProvider({ apiKey: platform });
    await ok(s.url, SET_KEY, { input: { providerId: p.id, apiKey: own } }, user.token);
    const before = await s.sql<{ sealed: SealedSecret }>(
      `SELECT sealed FROM user_provider_keys WHERE provider_id = $1`,
      [p.id],
    );
    // A secret of another module's kind: an MCP server's environment variable.
    const v1 = new Envelope({ '1': s.config.ENCRYPTION_MASTER_KEY }, '1');
    const mcpId = (await s.sql<{ id: string }>(`SELECT gen_random_uuid() AS id`))[0]!.id;
    const environment = [
      { name: 'PLAIN', secret: false, value: 'visible' },
      {
        name: 'TOKEN',
        secret: true,
        sealed: v1.encrypt('mcp-secret-value', `mcpServer:${mcpId}|env:TOKEN`),
        last4: null,
      },
    ];
    await s.sql(
      `INSERT INTO mcp_servers (id, name, server_type, command, environment) VALUES ($1, $2, 'filesystem', 'mcp-fs', $3)`,
      [mcpId, unique('mcp-'), JSON.stringify(environment)],
    );

    const v2 = randomBytes(32).toString('base64');
    const rotating = new Envelope({ '1': s.config.ENCRYPTION_MASTER_KEY, '2': v2 }, '2');
    const em = s.app.runtime.orm.em.fork() as EntityManager;
    const report = await rotateMasterKeys({ em, envelope: rotating, audit: s.app.runtime.services.audit });
    expect(report.version).toBe('2');
    const sealedProviders = (
      await s.sql<{ n: number }>(`SELECT count(*)::int AS n FROM providers WHERE platform_key IS NOT NULL`)
    )[0]!.n;
    const sealedUserKeys = (await s.sql<{ n: number }>(`SELECT count(*)::int AS n FROM user_provider_keys`))[0]!.n;
    expect(
      report.columns['providers.platform_key']!.rotated + report.columns['providers.platform_key']!.failed.length,
    ).toBe(sealedProviders);
    expect(
      report.columns['user_provider_keys.sealed']!.rotated + report.columns['user_provider_keys.sealed']!.failed.length,
    ).toBe(sealedUserKeys);
    expect(report.columns['providers.platform_key']!.rotated).toBeGreaterThan(0);
    expect(report.columns['user_provider_keys.sealed']!.rotated).toBeGreaterThan(0);

    // Only the data key changed; the new master key alone opens the secrets.
    const [prow] = await s.sql<{ platform_key: SealedSecret }>(`SELECT platform_key FROM providers WHERE id = $1`, [
      p.id,
    ]);
    const [krow] = await s.sql<{ sealed: SealedSecret; user_id: string }>(
      `SELECT sealed, user_id FROM user_provider_keys WHERE provider_id = $1`,
      [p.id],
    );
    expect(prow!.platform_key.v).toBe('2');
    expect(krow!.sealed.v).toBe('2');
    expect(krow!.sealed.ct).toBe(before[0]!.sealed.ct);
    expect(krow!.sealed.dk).not.toBe(before[0]!.sealed.dk);
    const onlyV2 = new Envelope({ '2': v2 }, '2');
    expect(onlyV2.decrypt(prow!.platform_key, `provider:${p.id}`)).toBe(platform);
    expect(onlyV2.decrypt(krow!.sealed, `user:${krow!.user_id}|provider:${p.id}`)).toBe(own);
    expect(() =>
      new Envelope({ '1': s.config.ENCRYPTION_MASTER_KEY }, '1').decrypt(
        krow!.sealed,
        `user:${krow!.user_id}|provider:${p.id}`,
      ),
    ).toThrow(/version 2/);
    const [mrow] = await s.sql<{ environment: any[] }>(`SELECT environment FROM mcp_servers WHERE id = $1`, [mcpId]);
    expect(mrow!.environment[0]).toEqual(environment[0]);
    expect(onlyV2.decrypt(mrow!.environment[1].sealed, `mcpServer:${mcpId}|env:TOKEN`)).toBe('mcp-secret-value');
    expect(report.columns['mcp_servers.environment']!.rotated).toBe(1);

    // Nothing left to do the second time; the runs are in the audit trail.
    const again = await rotateMasterKeys({ em: s.app.runtime.orm.em.fork() as EntityManager, envelope: rotating });
    expect(Object.values(again.columns).every((c) => c.rotated === 0)).toBe(true);
    for (const [name, c] of Object.entries(again.columns))
      expect(c.current, name).toBe(report.columns[name]!.current + report.columns[name]!.rotated);
    expect(await s.sql(`SELECT 1 FROM audit_events WHERE action = 'keys.rotate' AND entity_id = '2'`)).toHaveLength(1);

    // The keys rotated away from version 1, which this server still holds alone: restore them for the other tests.
    const back = new Envelope({ '1': s.config.ENCRYPTION_MASTER_KEY, '2': v2 }, '1');
    await rotateMasterKeys({ em: s.app.runtime.orm.em.fork() as EntityManager, envelope: back });
    await deactivate(p.id);
  });
});

describe('master key settings', () => {
  const key = () => randomBytes(32).toString('base64');
  const settings = (env: Record<string, string>) =>
    loadConfig({
      STEWARD_HOME: '/nonexistent',
      TOKEN_SIGNING_KEY: 'k'.repeat(40),
      ENCRYPTION_MASTER_KEY: env.current ?? key(),
      ...env,
    });

  it('read the current version and the retired keys that still open older secrets', () => {
    const [current, old, older] = [key(), key(), key()];
    const c = settings({
      current,
      ENCRYPTION_MASTER_KEY: current,
      ENCRYPTION_MASTER_KEY_VERSION: '3',
      ENCRYPTION_PREVIOUS_MASTER_KEYS: `1:${older}, 2:${old}`,
    });
    expect(masterKeys(c)).toEqual({ current: '3', keys: { '1': older, '2': old, '3': current } });
    expect(masterKeys(settings({})).current).toBe('1');
  });

  it('refuse malformed retired keys and a retired key that claims the current version', () => {
    for (const bad of ['1', `1:${key()},1:${key()}`, '1:c2hvcnQ=', `bad version:${key()}`]) {
      expect(() => settings({ ENCRYPTION_PREVIOUS_MASTER_KEYS: bad }), bad).toThrow(/ENCRYPTION_PREVIOUS_MASTER_KEYS/);
    }
    expect(() => masterKeys(settings({ ENCRYPTION_PREVIOUS_MASTER_KEYS: `1:${key()}` }))).toThrow(/current version/);
  });
});

describe('the OpenAI client against an OpenAI-compatible server', () => {
  const chat = (content: string, extra: Record<string, unknown> = {}) => ({
    model: 'gpt-fake',
    messages: [
      { role: 'system' as const, content: 'Be brief.' },
      { role: 'user' as const, content },
    ],
    maxTokens: 64,
    timeoutMs: 5000,
    ...extra,
  });

  it('streams the reply delta by delta and returns the usage of the final chunk', async () => {
    const key = newKey();
    const p = await createProvider({ apiKey: key, maxTokens: 64 });
    const resolved = await providers.resolveCall(user.id, p.id);
    expect(resolved.provider).toMatchObject({
      id: p.id,
      modelName: 'gpt-fake',
      inputCostPer1k: '0.001000',
      outputCostPer1k: '0.002000',
      maxTokens: 64,
      timeoutSeconds: 5,
    });
    expect(resolved.keySource).toBe('PLATFORM');

    fake.script({
      chunks: ['Hel', 'lo, ', 'wor', 'ld!'],
      usage: { prompt_tokens: 21, completion_tokens: 4 },
      model: 'gpt-fake-2026',
    });
    const deltas: string[] = [];
    const seen = fake.requests.length;
    const result = await resolved.client.chat(chat('Say hello'), (d) => deltas.push(d));
    expect(deltas).toEqual(['Hel', 'lo, ', 'wor', 'ld!']);
    expect(result).toEqual({
      content: 'Hello, world!',
      promptTokens: 21,
      completionTokens: 4,
      model: 'gpt-fake-2026',
      finishReason: 'stop',
      usageReported: true,
    });

    const sent = fake.requests.slice(seen);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.authorization).toBe(`Bearer ${key}`);
    expect(sent[0]!.body).toMatchObject({
      model: 'gpt-fake',
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 64,
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Say hello' },
      ],
    });
    await deactivate(p.id);
  });

  it('estimates the counts with the documented rule when the server reports no usage', async () => {
    const p = await createProvider({ apiKey: newKey() });
    fake.script({ reply: 'Twelve chars', usage: null });
    const r = await (await providers.resolveCall(user.id, p.id)).client.chat(chat('Count me'));
    expect(r).toMatchObject({
      content: 'Twelve chars',
      promptTokens: countTokens('Be brief.') + countTokens('Count me'),
      completionTokens: 3,
    });
    await deactivate(p.id);
  });

  it("fails with the server's status on a 500, without the key in the message", async () => {
    const key = newKey();
    const p = await createProvider({ apiKey: key });
    const { client } = await providers.resolveCall(user.id, p.id);
    fake.script({ status: 500, message: `upstream exploded for key ${key}` });
    const err = await client.chat(chat('Hello')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LlmCallError);
    expect(err).toMatchObject({ kind: 'UPSTREAM', status: 500, retryable: true });
    expect((err as Error).message).not.toContain(key);
    expect((err as Error).message).not.toContain(key.slice(0, 12));

    fake.script({ status: 401, message: 'Incorrect API key provided' });
    await expect(client.chat(chat('Hello'))).rejects.toMatchObject({ kind: 'AUTH', status: 401, retryable: false });
    fake.script({ drop: true });
    await expect(client.chat(chat('Hello'))).rejects.toMatchObject({ kind: 'NETWORK' });
    await deactivate(p.id);
  });

  it('times out when the server is slow to answer, or stalls mid-stream', async () => {
    const p = await createProvider({ apiKey: newKey() });
    const { client } = await providers.resolveCall(user.id, p.id);
    fake.script({ delayMs: 1000 });
    let started = Date.now();
    await expect(client.chat(chat('Hello', { timeoutMs: 200 }))).rejects.toMatchObject({ kind: 'TIMEOUT' });
    expect(Date.now() - started).toBeLessThan(900);

    fake.script({ reply: 'one two three four', stallAfterChunks: 2 });
    const deltas: string[] = [];
    started = Date.now();
    await expect(client.chat(chat('Hello', { timeoutMs: 300 }), (d) => deltas.push(d))).rejects.toMatchObject({
      kind: 'TIMEOUT',
    });
    expect(deltas).toEqual(['one ', 'two ']);
    expect(Date.now() - started).toBeLessThan(2000);
    await deactivate(p.id);
  });

  it('stops when the caller aborts', async () => {
    const p = await createProvider({ apiKey: newKey() });
    const { client } = await providers.resolveCall(user.id, p.id);
    fake.script({ delayMs: 2000 });
    const controller = new AbortController();
    const call = client.chat(chat('Hello', { signal: controller.signal }));
    setTimeout(() => controller.abort(), 50);
    await expect(call).rejects.toMatchObject({ kind: 'ABORTED' });
    await deactivate(p.id);
  });

  it("uses the user's own key before the platform key", async () => {
    const platform = newKey('sk-platform');
    const own = newKey('sk-own');
    const p = await createProvider({ apiKey: platform });
    const other = await createUser(s, admin);
    await ok(s.url, SET_KEY, { input: { providerId: p.id, apiKey: own } }, user.token);

    const mine = await providers.resolveCall(user.id, p.id);
    expect(mine.keySource).toBe('USER');
    let seen = fake.requests.length;
    await mine.client.chat(chat('Mine'));
    expect(fake.requests.slice(seen).map((r) => r.authorization)).toEqual([`Bearer ${own}`]);

    const theirs = await providers.resolveCall(other.id, p.id);
    expect(theirs.keySource).toBe('PLATFORM');
    seen = fake.requests.length;
    await theirs.client.chat(chat('Theirs'));
    expect(fake.requests.slice(seen).map((r) => r.authorization)).toEqual([`Bearer ${platform}`]);

    await ok(s.url, DELETE_KEY, { id: p.id }, user.token);
    seen = fake.requests.length;
    await (await providers.resolveCall(user.id, p.id)).client.chat(chat('Platform again'));
    expect(fake.requests.slice(seen).map((r) => r.authorization)).toEqual([`Bearer ${platform}`]);
    await deactivate(p.id);
  });

  it("calls a keyless self-hosted endpoint without an Authorization header, and a provider that is not platform-provided only with the user's key", async () => {
    const keyless = await createProvider({ apiKey: null });
    const seen = fake.requests.length;
    await (await providers.resolveCall(user.id, keyless.id)).client.chat(chat('Hi'));
    expect(fake.requests.slice(seen).map((r) => r.authorization)).toEqual([null]);

    const byo = await createProvider({ apiKey: newKey(), platformProvided: false });
    await expect(providers.resolveCall(user.id, byo.id)).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
      details: { reason: 'KEY_REQUIRED' },
    });
    await ok(s.url, SET_KEY, { input: { providerId: byo.id, apiKey: newKey() } }, user.token);
    expect((await providers.resolveCall(user.id, byo.id)).keySource).toBe('USER');
    await deactivate(keyless.id, byo.id);
  });
});

describe('the Anthropic client', () => {
  /** A minimal Anthropic Messages API on loopback: SSE events as the real one sends them. */
  async function fakeAnthropic() {
    const seen: { path: string; headers: Record<string, unknown>; body: any }[] = [];
    let failWith: number | null = null;
    const server = createServer(async (req, res) => {
      const parts: Buffer[] = [];
      for await (const c of req) parts.push(c as Buffer);
      const body = parts.length ? JSON.parse(Buffer.concat(parts).toString('utf8')) : null;
      seen.push({ path: req.url ?? '', headers: req.headers, body });
      if (failWith) {
        res.writeHead(failWith, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }));
      }
      if (req.method === 'GET' && req.url?.startsWith('/v1/models')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(
          JSON.stringify({
            data: [{ id: 'claude-fake', type: 'model', display_name: 'Fake', created_at: '2026-01-01T00:00:00Z' }],
            has_more: false,
            first_id: 'claude-fake',
            last_id: 'claude-fake',
          }),
        );
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const send = (event: string, data: unknown) =>
        res.write(`event: ${event}\ndata: ${JSON.stringify({ type: event, ...(data as object) })}\n\n`);
      send('message_start', {
        message: {
          id: 'msg_1',
          type: 'message',
          role: 'assistant',
          model: 'claude-fake-20260101',
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { input_tokens: 31, output_tokens: 1 },
        },
      });
      send('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
      for (const text of ['Bonjour', ', le ', 'monde'])
        send('content_block_delta', { index: 0, delta: { type: 'text_delta', text } });
      send('content_block_stop', { index: 0 });
      send('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 6 } });
      send('message_stop', {});
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      seen,
      fail: (status: number | null) => void (failWith = status),
      close: () => new Promise<void>((r) => server.close(() => r())),
    };
  }

  it('streams through the official SDK with the system text apart, and returns the usage', async () => {
    const api = await fakeAnthropic();
    try {
      const key = newKey('sk-ant');
      const p = await createProvider({
        providerType: 'ANTHROPIC',
        modelName: 'claude-fake',
        apiEndpoint: api.url,
        apiKey: key,
        maxTokens: 100,
      });
      const { client } = await providers.resolveCall(user.id, p.id);
      const deltas: string[] = [];
      const r = await client.chat(
        {
          model: 'claude-fake',
          messages: [
            { role: 'system', content: 'Answer in French.' },
            { role: 'user', content: 'Hello' },
            { role: 'user', content: 'world' },
          ],
          maxTokens: 100,
          timeoutMs: 5000,
        },
        (d) => deltas.push(d),
      );
      expect(deltas).toEqual(['Bonjour', ', le ', 'monde']);
      expect(r).toEqual({
        content: 'Bonjour, le monde',
        promptTokens: 31,
        completionTokens: 6,
        model: 'claude-fake-20260101',
        finishReason: 'stop',
        usageReported: true,
      });
      const call = api.seen.at(-1)!;
      expect(call.path).toBe('/v1/messages');
      expect(call.headers['x-api-key'] ?? call.headers.authorization).toMatch(new RegExp(`^(Bearer )?${key}$`)); // the SDK's own choice of header
      expect(call.body).toMatchObject({
        model: 'claude-fake',
        max_tokens: 100,
        stream: true,
        system: 'Answer in French.',
        messages: [{ role: 'user', content: 'Hello\n\nworld' }],
      });

      api.fail(529);
      await expect(
        client.chat({
          model: 'claude-fake',
          messages: [{ role: 'user', content: 'hi' }],
          maxTokens: 10,
          timeoutMs: 5000,
        }),
      ).rejects.toMatchObject({ kind: 'UPSTREAM', status: 529 });
      api.fail(null);
      await deactivate(p.id);
    } finally {
      await api.close();
    }
  });
});

describe('the LOCAL model and the choice of provider', () => {
  const localId = async () =>
    (await s.sql<{ id: string }>(`SELECT id FROM providers WHERE name = 'Steward Local'`))[0]!.id;

  it('answers deterministically, word by word, with counts by the documented rule', async () => {
    const { client, provider, keySource } = await providers.resolveCall(user.id, await localId());
    expect(provider).toMatchObject({
      providerType: 'LOCAL',
      modelName: LOCAL_MODEL,
      inputCostPer1k: '0.000000',
      outputCostPer1k: '0.000000',
    });
    expect(keySource).toBe('PLATFORM');
    const req = {
      model: LOCAL_MODEL,
      messages: [{ role: 'user' as const, content: 'Summarise the quarterly report for the board' }],
      maxTokens: 500,
      timeoutMs: 1000,
    };
    const deltas: string[] = [];
    const a = await client.chat(req, (d) => deltas.push(d));
    const b = await client.chat(req);
    expect(b).toEqual(a);
    expect(deltas.join('')).toBe(a.content);
    expect(deltas.length).toBeGreaterThan(5);
    expect(deltas.every((d) => /^\S+\s*$/.test(d))).toBe(true);
    expect(a.content).toContain('Steward Local');
    expect(a.content).toContain('Summarise the quarterly report for the board');
    expect(a).toMatchObject({
      promptTokens: Math.ceil(req.messages[0]!.content.length / 4),
      completionTokens: Math.ceil(a.content.length / 4),
      model: LOCAL_MODEL,
    });
    const short = await client.chat({ ...req, maxTokens: 5 });
    expect(short.completionTokens).toBeLessThanOrEqual(5);
    expect(a.content.startsWith(short.content)).toBe(true);
  });

  it('picks a real provider before LOCAL, the cheapest first, and skips unhealthy ones', async () => {
    // Only this test's providers and LOCAL are active (every test deactivates its own; this makes sure).
    await s.sql(`UPDATE providers SET active = false WHERE provider_type <> 'LOCAL'`);
    expect((await providers.resolveCall(user.id)).provider.providerType).toBe('LOCAL');

    const dear = await createProvider({ apiKey: newKey(), inputCostPer1k: '0.010000', outputCostPer1k: '0.030000' });
    const cheap = await createProvider({ apiKey: newKey(), inputCostPer1k: '0.000100', outputCostPer1k: '0.000200' });
    const byo = await createProvider({
      apiKey: null,
      apiEndpoint: fake.url,
      providerType: 'ANTHROPIC',
      modelName: 'claude-x',
      inputCostPer1k: '0',
      outputCostPer1k: '0',
    });
    const google = await createProvider({
      providerType: 'GOOGLE',
      apiEndpoint: null,
      apiKey: newKey(),
      inputCostPer1k: '0',
      outputCostPer1k: '0',
      modelName: 'gemini-x',
    });
    // ANTHROPIC without any key and GOOGLE (no client yet) are not usable, though free.
    expect((await providers.resolveCall(user.id)).provider.id).toBe(cheap.id);

    await s.sql(`UPDATE provider_health SET is_healthy = false WHERE provider_id = $1`, [cheap.id]);
    expect((await providers.resolveCall(user.id)).provider.id).toBe(dear.id);
    await expect(providers.resolveCall(user.id, cheap.id)).rejects.toMatchObject({
      code: 'CONFLICT',
      details: { reason: 'PROVIDER_UNHEALTHY' },
    });
    await s.sql(`UPDATE provider_health SET is_healthy = true WHERE provider_id = $1`, [cheap.id]);

    // The fallback is another usable provider, never the failed one, never LOCAL for a real one.
    expect((await providers.fallbackFor(cheap.id, user.id))?.provider.id).toBe(dear.id);
    expect(await providers.fallbackFor(dear.id, user.id).then((f) => f?.provider.id)).toBe(cheap.id);
    await deactivate(dear.id);
    expect(await providers.fallbackFor(cheap.id, user.id)).toBeNull();
    expect((await providers.fallbackFor(await localId(), user.id))?.provider.id).toBe(cheap.id);

    await expect(providers.resolveCall(user.id, dear.id)).rejects.toMatchObject({
      code: 'CONFLICT',
      details: { reason: 'PROVIDER_INACTIVE' },
    });
    await expect(providers.resolveCall(user.id, '00000000-0000-4000-8000-000000000000')).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(providers.resolveCall(user.id, byo.id)).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    await deactivate(cheap.id, byo.id, google.id);
  });

  it('refuses GOOGLE and HUGGINGFACE at call time: they have no client yet', async () => {
    for (const providerType of ['GOOGLE', 'HUGGINGFACE']) {
      const p = await createProvider({ providerType, apiEndpoint: null, apiKey: newKey(), modelName: 'some-model' });
      const { client } = await providers.resolveCall(user.id, p.id);
      await expect(
        client.chat({
          model: 'some-model',
          messages: [{ role: 'user', content: 'hi' }],
          maxTokens: 10,
          timeoutMs: 1000,
        }),
      ).rejects.toMatchObject({
        code: 'BAD_USER_INPUT',
        message: expect.stringContaining(`provider type ${providerType} has no client yet`),
      });
      await deactivate(p.id);
    }
  });
});

describe('provider health', () => {
  const HEALTH = `query($id: ID!) { provider(id: $id) { health { isHealthy consecutiveFailures checks successes successRate responseTimeMs lastCheckAt lastError } } }`;
  const CHANGED = `subscription { providerHealthChanged { providerId isHealthy consecutiveFailures lastError provider { id name } } }`;
  const runCheck = () => s.app.runtime.scheduler.runNow(PROVIDER_HEALTH_JOB);

  it('marks a provider unhealthy after N failed checks, tells admins, skips it, and heals it on the next success', async () => {
    const own = await startFakeOpenAI();
    try {
      const p = await createProvider({ apiKey: newKey() }, own);
      const admins = wsClient(s.wsUrl, admin.token);
      const events = subscribe(admins, CHANGED);
      await busListeners(s).registered(1);

      expect((await runCheck()).ran).toBe(true);
      let h = (await ok(s.url, HEALTH, { id: p.id }, admin.token)).provider.health;
      expect(h).toMatchObject({
        isHealthy: true,
        consecutiveFailures: 0,
        checks: 1,
        successes: 1,
        successRate: 1,
        lastError: null,
      });
      expect(h.responseTimeMs).toBeGreaterThanOrEqual(0);
      expect(own.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /v1/models']);

      own.down({ status: 503 });
      await runCheck();
      await runCheck();
      h = (await ok(s.url, HEALTH, { id: p.id }, admin.token)).provider.health;
      expect(h).toMatchObject({ isHealthy: true, consecutiveFailures: 2, checks: 3, successes: 1 });
      expect(h.lastError).toMatch(/503/);
      expect(events.received).toHaveLength(0);

      await runCheck(); // the third consecutive failure
      const down = (await events.next()).providerHealthChanged;
      expect(down).toMatchObject({
        providerId: p.id,
        isHealthy: false,
        consecutiveFailures: 3,
        provider: { id: p.id, name: p.name },
      });
      h = (await ok(s.url, HEALTH, { id: p.id }, user.token)).provider.health;
      expect(h).toMatchObject({
        isHealthy: false,
        consecutiveFailures: 3,
        checks: 4,
        successes: 1,
        successRate: 0.25,
        lastError: null,
      }); // users do not see errors
      await expect(providers.resolveCall(user.id, p.id)).rejects.toMatchObject({
        code: 'CONFLICT',
        details: { reason: 'PROVIDER_UNHEALTHY' },
      });
      expect((await providers.resolveCall(user.id)).provider.id).not.toBe(p.id);

      await runCheck(); // still down: no second event
      own.up();
      await runCheck();
      const up = (await events.next()).providerHealthChanged;
      expect(up).toMatchObject({ providerId: p.id, isHealthy: true, consecutiveFailures: 0, lastError: null });
      expect((await providers.resolveCall(user.id, p.id)).provider.id).toBe(p.id);
      expect(events.received).toHaveLength(2);

      const audits = await s.sql<{ action: string }>(
        `SELECT action FROM audit_events WHERE entity_id = $1 AND action LIKE 'provider.%healthy' ORDER BY created_at, id`,
        [p.id],
      );
      expect(audits.map((a) => a.action)).toEqual(['provider.unhealthy', 'provider.healthy']);
      await admins.dispose();
      await deactivate(p.id);
    } finally {
      await own.close();
    }
  });

  it('counts a refused platform key as a failure, but a reachable endpoint without a platform key as healthy', async () => {
    const own = await startFakeOpenAI();
    try {
      const withKey = await createProvider({ apiKey: newKey() }, own);
      const withoutKey = await createProvider({ apiKey: null, platformProvided: false }, own);
      own.down({ status: 401 });
      await runCheck();
      const [a, b] = await Promise.all(
        [withKey, withoutKey].map(async (p) => (await ok(s.url, HEALTH, { id: p.id }, admin.token)).provider.health),
      );
      expect(a).toMatchObject({ consecutiveFailures: 1, successes: 0 });
      expect(a.lastError).toMatch(/401/);
      expect(b).toMatchObject({ consecutiveFailures: 0, successes: 1 });
      await deactivate(withKey.id, withoutKey.id);
    } finally {
      await own.close();
    }
  });

  it('lets only admins subscribe to health changes', async () => {
    const c = wsClient(s.wsUrl, user.token);
    const r = await wsExecute(c, CHANGED);
    expect(codes(r)).toEqual(['FORBIDDEN']);
    await c.dispose();
  });

  it('loads the health of a page of providers in one statement', async () => {
    const made = await Promise.all([1, 2, 3].map(() => createProvider({ apiKey: newKey() })));
    const pool = s.app.runtime.db.pool as unknown as { query: (...args: unknown[]) => unknown };
    const original = pool.query;
    const texts: string[] = [];
    pool.query = function (this: unknown, ...args: unknown[]) {
      const q = args[0] as string | { text: string };
      texts.push(typeof q === 'string' ? q : q.text);
      return original.apply(this, args);
    };
    let r;
    try {
      r = await ok(s.url, LIST, {}, admin.token);
    } finally {
      pool.query = original;
    }
    const nodes = r.providers.edges.map((e: any) => e.node);
    expect(nodes.length).toBeGreaterThan(3);
    for (const p of made) expect(nodes.find((n: any) => n.id === p.id).health).toEqual({ isHealthy: true });
    expect(texts.filter((t) => /FROM provider_health WHERE provider_id = ANY/.test(t))).toHaveLength(1);
    await deactivate(...made.map((p) => p.id));
  });
});
