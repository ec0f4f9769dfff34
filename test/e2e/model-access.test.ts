import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { codes, gql, ok } from '../support/client.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';
import { createFakeProvider } from '../support/providers.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, setRoomyQuota, type TestUser } from '../support/users.js';
import { until } from '../support/wait.js';

/**
 * Who may use which models: admin-managed rules by tier, role and project, applied to
 * /v1/models, the chat, messages and embeddings routes and sendMessage, held in memory
 * (no SQL per call) and reloaded on every instance when one changes. Calls counted at
 * the fake provider: a refused call never reaches it.
 */
let s: TestServer;
let s2: TestServer;
let fake: FakeOpenAI;
let admin: TestUser;
const providerIds: Record<string, string> = {};

const OPEN = 'gpt-4o-mini';
const PREMIUM = 'gpt-4.1-mini';
const SET_RULE = `mutation($input: SetModelAccessRuleInput!) { setModelAccessRule(input: $input) { id model tiers roles projectId note } }`;
const CLEAR_RULE = `mutation($id: ID!) { clearModelAccessRule(id: $id) }`;
const RULES = `query($model: String) { modelAccessRules(first: 100, model: $model) { totalCount edges { node { id model tiers roles projectId } } } }`;

const baseOf = (t: TestServer) => t.url.replace(/\/graphql$/, '');
const openai = (key: string, on: TestServer = s, headers: Record<string, string> = {}) =>
  new OpenAI({ apiKey: key, baseURL: `${baseOf(on)}/v1`, maxRetries: 0, defaultHeaders: headers });
const chat = (key: string, model: string, on: TestServer = s, headers: Record<string, string> = {}) =>
  openai(key, on, headers)
    .chat.completions.create({ model, messages: [{ role: 'user', content: 'Write a unit test' }], max_tokens: 20 })
    .then(
      () => 'ok',
      (e) => `${e.status}:${e.error?.code}`,
    );
const models = async (key: string, on: TestServer = s) => {
  const ids: string[] = [];
  for await (const m of openai(key, on).models.list()) ids.push(m.id);
  return ids.sort();
};

async function member(tier?: 'PREMIUM' | 'VIP', role: 'USER' | 'ADMIN' = 'USER') {
  const u = await createUser(s, admin, role);
  if (tier)
    await ok(
      s.url,
      `mutation($input: UpdateUserInput!) { updateUser(input: $input) { id } }`,
      { input: { id: u.id, tier } },
      admin.token,
    );
  await setRoomyQuota(s, admin, u.id);
  return u;
}

async function key(u: TestUser, input: Record<string, unknown> = {}) {
  return (
    await ok(
      s.url,
      `mutation($input: CreateVirtualKeyInput!) { createVirtualKey(input: $input) { token } }`,
      { input: { name: 'k', ...input } },
      u.token,
    )
  ).createVirtualKey.token as string;
}

const rule = async (input: Record<string, unknown>) =>
  (await ok(s.url, SET_RULE, { input }, admin.token)).setModelAccessRule;

beforeAll(async () => {
  fake = await startFakeOpenAI();
  s = await startTestServer();
  s2 = await startTestServer({ shareDatabaseWith: s });
  admin = await firstAdmin(s);
  for (const modelName of [OPEN, PREMIUM])
    providerIds[modelName] = (
      await createFakeProvider(
        s.url,
        {
          name: `fake-${modelName}`,
          modelName,
          apiEndpoint: fake.baseURL,
          inputCostPer1k: '0.002000',
          outputCostPer1k: '0.004000',
        },
        admin.token,
      )
    ).createProvider.id;
});
afterAll(async () => {
  await s2?.close();
  await s?.close();
  await fake?.close();
});
afterEach(async () => {
  // Every test starts with no rule (cleared through the API, so every instance hears it).
  const all = (await ok(s.url, RULES, {}, admin.token)).modelAccessRules.edges;
  for (const e of all) await ok(s.url, CLEAR_RULE, { id: e.node.id }, admin.token);
  fake.reset();
});

describe('model access rules', () => {
  it('a model with a tier rule is listed and served only to callers of that tier, in every route', async () => {
    const basic = await member();
    const vip = await member('VIP');
    const [basicKey, vipKey] = [await key(basic), await key(vip)];
    const local = (await models(basicKey)).filter((m) => m !== OPEN && m !== PREMIUM);
    expect(await models(basicKey)).toEqual([OPEN, PREMIUM, ...local].sort());

    await rule({ model: 'gpt-4.1*', tiers: ['VIP', 'PREMIUM'], note: 'premium models for paying tiers' });
    expect(await models(basicKey)).toEqual([OPEN, ...local].sort());
    expect(await models(vipKey)).toEqual([OPEN, PREMIUM, ...local].sort());

    fake.reset();
    expect(await chat(basicKey, PREMIUM)).toBe('403:model_not_allowed');
    expect(await chat(basicKey, `fake-${PREMIUM}/${PREMIUM}`)).toMatch(/^40[34]:/); // by provider name: no way around
    const embed = await openai(basicKey)
      .embeddings.create({ model: PREMIUM, input: 'hello' })
      .catch((e) => e);
    expect(embed).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(embed.error).toMatchObject({ code: 'model_not_allowed', type: 'invalid_request_error' });
    const messages = await new Anthropic({ apiKey: basicKey, baseURL: baseOf(s), maxRetries: 0 }).messages
      .create({ model: PREMIUM, max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e) => e);
    expect(messages).toBeInstanceOf(Anthropic.PermissionDeniedError);
    expect(messages.error).toMatchObject({ type: 'error', error: { type: 'permission_error' } });
    expect(fake.requests.filter((r) => r.method === 'POST')).toHaveLength(0);

    expect(await chat(basicKey, OPEN)).toBe('ok');
    expect(await chat(vipKey, PREMIUM)).toBe('ok');
    expect(fake.ledger.calls.map((c) => c.model)).toEqual([OPEN, PREMIUM]);

    // A tier change reaches the cached key at once (USER_UPDATED on the bus).
    await ok(s.url, `mutation { updateUser(input: { id: "${basic.id}", tier: PREMIUM }) { id } }`, {}, admin.token);
    await until(async () => (await chat(basicKey, PREMIUM)) === 'ok', 'the new tier to apply', 2000);
  });

  it('rules by role and by project are alternatives: one matching rule admits', async () => {
    const owner = await member();
    const outsider = await member();
    const project = (
      await ok(s.url, `mutation { createProject(input: { name: "Pilot ${Math.random()}" }) { id } }`, {}, owner.token)
    ).createProject.id;
    const task = (
      await ok(
        s.url,
        `mutation($input: CreateTaskInput!) { createTask(input: $input) { id } }`,
        { input: { projectId: project, title: 'Pilot task' } },
        owner.token,
      )
    ).createTask.id;
    await rule({ model: PREMIUM, projectId: project });
    await rule({ model: PREMIUM, roles: ['ADMIN'] });

    const unbound = await key(owner);
    const bound = await key(owner, { projectId: project });
    expect(await chat(unbound, PREMIUM)).toBe('403:model_not_allowed');
    expect(await models(unbound)).not.toContain(PREMIUM);
    expect(await chat(bound, PREMIUM)).toBe('ok');
    expect(await models(bound)).toContain(PREMIUM);
    // Attributed to the project through X-Steward-Task.
    expect(await chat(unbound, PREMIUM, s, { 'X-Steward-Task': task })).toBe('ok');
    expect(await chat(await key(outsider), PREMIUM)).toBe('403:model_not_allowed');
    // The role rule: an administrator, in no project.
    expect(await chat(await key(admin), PREMIUM)).toBe('ok');
    expect(fake.ledger.calls).toHaveLength(3);
  });

  it('sendMessage obeys the same rules', async () => {
    const basic = await member();
    const vip = await member('VIP');
    await rule({ model: PREMIUM, tiers: ['VIP'] });
    const start = `mutation($input: StartConversationInput!) { startConversation(input: $input) { id } }`;
    const send = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { content model } }`;
    const conv = async (u: TestUser) =>
      (await ok(s.url, start, { input: { providerId: providerIds[PREMIUM] } }, u.token)).startConversation.id;
    const refused = await gql(
      s.url,
      send,
      { input: { conversationId: await conv(basic), content: 'Write a unit test' } },
      basic.token,
    );
    expect(codes(refused)).toEqual(['FORBIDDEN']);
    expect(refused.errors![0]!.message).toContain(PREMIUM);
    expect(fake.ledger.calls).toHaveLength(0);
    const answered = await ok(
      s.url,
      send,
      { input: { conversationId: await conv(vip), content: 'Write a unit test' } },
      vip.token,
    );
    expect(answered.sendMessage.model).toBe(PREMIUM);
    expect(fake.ledger.calls.map((c) => c.model)).toEqual([PREMIUM]);
    // Another model stays open to everyone.
    const open = (await ok(s.url, start, { input: { providerId: providerIds[OPEN] } }, basic.token)).startConversation
      .id;
    await ok(s.url, send, { input: { conversationId: open, content: 'Write a unit test' } }, basic.token);
    expect(fake.ledger.calls).toHaveLength(2);
  });

  it('are held in memory (no read per call) and reloaded on every instance when one changes', async () => {
    const basic = await member();
    const k = await key(basic);
    // Let the reloads of the previous test's clean-up (heard on the bus) finish first.
    await new Promise((r) => setTimeout(r, 1000));
    // Both instances have loaded the (empty) rule set.
    expect(await chat(k, PREMIUM, s)).toBe('ok');
    expect(await chat(k, PREMIUM, s2)).toBe('ok');
    // Written behind Steward's back (no event): no instance reads it per call, so none applies it.
    await s.sql(`INSERT INTO model_access_rules (id, model, tiers) VALUES (gen_random_uuid(), $1, '{VIP}')`, [PREMIUM]);
    expect(await chat(k, PREMIUM, s)).toBe('ok');
    expect(await chat(k, PREMIUM, s2)).toBe('ok');
    // A change through the API: in force on this instance when it answers, on the other moments later.
    const r = await rule({ model: OPEN, roles: ['ADMIN'] });
    expect(await chat(k, PREMIUM, s)).toBe('403:model_not_allowed');
    expect(await chat(k, OPEN, s)).toBe('403:model_not_allowed');
    await until(async () => (await chat(k, OPEN, s2)) === '403:model_not_allowed', 'the rule on s2', 2000);
    expect(await chat(k, PREMIUM, s2)).toBe('403:model_not_allowed');
    expect(await ok(s2.url, CLEAR_RULE, { id: r.id }, admin.token)).toEqual({ clearModelAccessRule: true });
    expect(await chat(k, OPEN, s2)).toBe('ok');
    await until(async () => (await chat(k, OPEN, s)) === 'ok', 'the cleared rule on s', 2000);
  });

  it('are managed by administrators only, validated and audited', async () => {
    const basic = await member();
    expect(codes(await gql(s.url, SET_RULE, { input: { model: OPEN, tiers: ['VIP'] } }, basic.token))).toEqual([
      'FORBIDDEN',
    ]);
    expect(codes(await gql(s.url, RULES, {}, basic.token))).toEqual(['FORBIDDEN']);
    const bad = (input: Record<string, unknown>) => gql(s.url, SET_RULE, { input }, admin.token).then(codes);
    expect(await bad({ model: OPEN })).toEqual(['BAD_USER_INPUT']); // no condition
    expect(await bad({ model: ' ', tiers: ['VIP'] })).toEqual(['BAD_USER_INPUT']);
    expect(await bad({ model: OPEN, tiers: ['GOLD'] })).toEqual(['BAD_USER_INPUT']);
    expect(await bad({ model: OPEN, projectId: '00000000-0000-7000-8000-000000000000' })).toEqual(['BAD_USER_INPUT']);
    expect(await bad({ id: '00000000-0000-7000-8000-000000000000', model: OPEN, tiers: ['VIP'] })).toEqual([
      'NOT_FOUND',
    ]);

    const created = await rule({ model: 'claude-*', tiers: ['VIP'] });
    expect(created).toMatchObject({ model: 'claude-*', tiers: ['VIP'], roles: [], projectId: null });
    const replaced = await rule({ id: created.id, model: 'claude-*', roles: ['ADMIN'] });
    expect(replaced).toMatchObject({ id: created.id, tiers: [], roles: ['ADMIN'] });
    const listed = (await ok(s.url, RULES, { model: 'claude-*' }, admin.token)).modelAccessRules;
    expect(listed.totalCount).toBe(1);
    expect(await ok(s.url, CLEAR_RULE, { id: created.id }, admin.token)).toEqual({ clearModelAccessRule: true });
    expect(await ok(s.url, CLEAR_RULE, { id: created.id }, admin.token)).toEqual({ clearModelAccessRule: false });
    const audit = await s.sql<{ action: string; actor_id: string }>(
      `SELECT action, actor_id FROM audit_events WHERE entity_id = $1 ORDER BY created_at, id`,
      [created.id],
    );
    expect(audit.map((a) => a.action)).toEqual(['modelAccess.create', 'modelAccess.update', 'modelAccess.clear']);
    expect(new Set(audit.map((a) => a.actor_id))).toEqual(new Set([admin.id]));
  });
});
