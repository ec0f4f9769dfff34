import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';

import { formatMicros, toMicros } from '../../src/modules/billing/money.js';
import { periodsAt } from '../../src/modules/billing/quota.service.js';
import { codes, gql, ok } from '../support/client.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';
import { createFakeProvider } from '../support/providers.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, type TestUser } from '../support/users.js';

/**
 * Virtual keys (API tokens with gateway rules) and budgets beyond the user's: key,
 * project, organisation. Driven by the official openai client; spend and calls counted at
 * the fake provider.
 */
let s: TestServer;
let fake: FakeOpenAI;
let admin: TestUser;
let base: string;

const MODEL = 'gpt-4o-mini';
const IN_PRICE = '0.002000';
const OUT_PRICE = '0.004000';
const CREATE_KEY = `mutation($input: CreateVirtualKeyInput!) { createVirtualKey(input: $input) { token key { id allowedModels taskId projectId dailyCostLimitUsd requestsPerMinute expiresAt } } }`;
const SET_PROJECT_BUDGET = `mutation($input: SetProjectBudgetInput!) { setProjectBudget(input: $input) { projectId dailyCostLimitUsd monthlyCostLimitUsd } }`;
const SET_QUOTA = `mutation($input: SetUserQuotaInput!) { setUserQuota(input: $input) { requestsPerHour } }`;
const ROOMY = {
  requestsPerHour: 1000,
  dailyTokenLimit: 1_000_000,
  monthlyTokenLimit: 1_000_000,
  monthlyMessageLimit: 1000,
};

const client = (key: string, headers: Record<string, string> = {}) =>
  new OpenAI({ apiKey: key, baseURL: `${base}/v1`, maxRetries: 0, defaultHeaders: headers });
const MESSAGES: OpenAI.Chat.ChatCompletionMessageParam[] = [
  { role: 'user', content: 'Write a unit test for the parser module' },
];

async function newKey(u: TestUser, input: Record<string, unknown> = {}) {
  const r = await ok(s.url, CREATE_KEY, { input: { name: 'key', ...input } }, u.token);
  return r.createVirtualKey as { token: string; key: { id: string } & Record<string, unknown> };
}

async function createProject(u: TestUser) {
  return (
    await ok(s.url, `mutation { createProject(input: { name: "Budgeted ${Math.random()}" }) { id } }`, {}, u.token)
  ).createProject.id as string;
}

beforeAll(async () => {
  fake = await startFakeOpenAI();
  s = await startTestServer();
  base = s.url.replace(/\/graphql$/, '');
  admin = await firstAdmin(s);
  await createFakeProvider(
    s.url,
    {
      name: 'fake-openai',
      modelName: MODEL,
      apiEndpoint: fake.baseURL,
      inputCostPer1k: IN_PRICE,
      outputCostPer1k: OUT_PRICE,
    },
    admin.token,
  );
});
afterAll(async () => {
  await s?.close();
  await fake?.close();
});

/** What one call of MESSAGES with max_tokens 20 reserves, read while it waits at the provider. */
async function worstCase(key: string, userId: string) {
  fake.script({ delayMs: 300 });
  const probe = client(key).chat.completions.create({ model: MODEL, messages: MESSAGES, max_tokens: 20 });
  await fake.received(fake.completions.length + 1);
  const [held] = await s.sql<{ tokens: number; cost: string }>(
    `SELECT tokens, cost_usd::text AS cost FROM quota_reservations WHERE user_id = $1`,
    [userId],
  );
  await probe;
  return { tokens: held!.tokens, cost: toMicros(held!.cost) };
}

/** 50 calls at once; every answer uses exactly its reservation, so settling frees nothing. */
async function fifty(key: string, worst: { tokens: number }) {
  fake.setDefault({ delayMs: 100, usage: { prompt_tokens: worst.tokens - 20, completion_tokens: 20 } });
  const results = await Promise.all(
    Array.from({ length: 50 }, () =>
      client(key)
        .chat.completions.create({ model: MODEL, messages: MESSAGES, max_tokens: 20 })
        .then(
          () => 'ok',
          (e) => `${e.status}:${e.error?.code}`,
        ),
    ),
  );
  return results.reduce<Record<string, number>>((t, r) => ((t[r] = (t[r] ?? 0) + 1), t), {});
}

const counter = async (subject: string) =>
  toMicros(
    (
      await s.sql<{ cost: string }>(
        `SELECT coalesce(sum(cost_usd), 0)::text AS cost FROM budget_counters WHERE subject = $1 AND period = 'DAY'`,
        [subject],
      )
    )[0]!.cost,
  );

describe('virtual keys', () => {
  it('are created through GraphQL, shown once, and limit the models a key may use', async () => {
    const user = await createUser(s, admin);
    const { token, key } = await newKey(user, { allowedModels: [MODEL] });
    expect(token).toMatch(/^stw_/);
    expect(key.allowedModels).toEqual([MODEL]);
    const ids = [];
    for await (const m of client(token).models.list()) ids.push(m.id);
    expect(ids).toEqual([MODEL]);
    fake.reset();
    const refused = await client(token)
      .chat.completions.create({ model: 'steward-local-1', messages: MESSAGES })
      .catch((e) => e);
    expect(refused).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(refused.error).toMatchObject({ code: 'model_not_allowed' });
    await client(token).chat.completions.create({ model: MODEL, messages: MESSAGES });
    expect(fake.ledger.calls).toHaveLength(1);
  });

  it('refuses a bad input with BAD_USER_INPUT and a task the creator does not work on', async () => {
    const user = await createUser(s, admin);
    const r = await gql(s.url, CREATE_KEY, { input: { name: 'k', dailyCostLimitUsd: '-1' } }, user.token);
    expect(codes(r)).toEqual(['BAD_USER_INPUT']);
    const other = await createUser(s, admin);
    const project = await createProject(other);
    const task = (
      await ok(
        s.url,
        `mutation($input: CreateTaskInput!) { createTask(input: $input) { id } }`,
        { input: { projectId: project, title: 'Secret' } },
        other.token,
      )
    ).createTask.id;
    expect(codes(await gql(s.url, CREATE_KEY, { input: { name: 'k', taskId: task } }, user.token))).toEqual([
      'NOT_FOUND',
    ]);
  });

  it('bind calls to a task: attributed to it and its project, and another task named in X-Steward-Task is refused', async () => {
    const user = await createUser(s, admin);
    const project = await createProject(user);
    const mk = async (title: string) =>
      (
        await ok(
          s.url,
          `mutation($input: CreateTaskInput!) { createTask(input: $input) { id } }`,
          { input: { projectId: project, title, allowedIntents: ['coding', 'testing'] } },
          user.token,
        )
      ).createTask.id as string;
    const [task, other] = [await mk('Bound'), await mk('Other')];
    const { token, key } = await newKey(user, { taskId: task });
    expect(key).toMatchObject({ taskId: task, projectId: project });
    fake.reset();
    await client(token).chat.completions.create({ model: MODEL, messages: MESSAGES });
    const refused = await client(token, { 'X-Steward-Task': other })
      .chat.completions.create({ model: MODEL, messages: MESSAGES })
      .catch((e) => e);
    expect(refused.status).toBe(403);
    expect(refused.error).toMatchObject({ code: 'task_not_allowed' });
    expect(fake.ledger.calls).toHaveLength(1);
    const logs = await s.sql<{ task_id: string; project_id: string }>(
      `SELECT task_id, project_id FROM prompt_logs WHERE user_id = $1`,
      [user.id],
    );
    expect(logs).toEqual([{ task_id: task, project_id: project }]);
  });

  it('stop at their expiry', async () => {
    const user = await createUser(s, admin);
    const { token } = await newKey(user, { expiresAt: new Date(Date.now() + 1500).toISOString() });
    await client(token).models.list();
    await new Promise((r) => setTimeout(r, 1700));
    expect(
      (
        await client(token)
          .models.list()
          .catch((e) => e)
      ).status,
    ).toBe(401);
  });

  it('have their own requests-per-minute limit: 429 rate_limit_exceeded with Retry-After, the provider not called', async () => {
    const user = await createUser(s, admin);
    await ok(s.url, SET_QUOTA, { input: { userId: user.id, ...ROOMY } }, admin.token);
    const { token } = await newKey(user, { requestsPerMinute: 3 });
    fake.reset();
    // Not across a minute boundary: the limit counts per clock minute.
    if (Date.now() % 60_000 > 50_000) await new Promise((r) => setTimeout(r, 61_000 - (Date.now() % 60_000)));
    for (let i = 0; i < 3; i++) await client(token).chat.completions.create({ model: MODEL, messages: MESSAGES });
    const limited = await client(token)
      .chat.completions.create({ model: MODEL, messages: MESSAGES })
      .catch((e) => e);
    expect(limited).toBeInstanceOf(OpenAI.RateLimitError);
    expect(limited.error).toMatchObject({ code: 'rate_limit_exceeded' });
    const after = Number(limited.headers.get('retry-after'));
    expect(after).toBeGreaterThan(0);
    expect(after).toBeLessThanOrEqual(60);
    expect(fake.ledger.calls).toHaveLength(3);
  });
});

describe('the cached key authentication', () => {
  it('stops a revoked key within a second on every instance', async () => {
    const other = await startTestServer({ shareDatabaseWith: s });
    onTestFinished(() => other.close());
    const user = await createUser(s, admin);
    const { token, key } = await newKey(user);
    const there = new OpenAI({ apiKey: token, baseURL: `${other.url.replace(/\/graphql$/, '')}/v1`, maxRetries: 0 });
    await there.models.list(); // now cached on the other instance
    await client(token).models.list(); // and on this one
    await ok(s.url, `mutation($id: ID!) { revokeApiToken(id: $id) { id } }`, { id: key.id }, user.token);
    const started = Date.now();
    await expect
      .poll(
        async () =>
          await there.models.list().then(
            () => 200,
            (e) => e.status,
          ),
        { interval: 50, timeout: 1000 },
      )
      .toBe(401);
    await expect
      .poll(
        async () =>
          await client(token)
            .models.list()
            .then(
              () => 200,
              (e) => e.status,
            ),
        { interval: 50, timeout: 1000 },
      )
      .toBe(401);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

describe('budgets at the edge under 50 concurrent calls', () => {
  it("key level: admitted = affordable, spend counted at the provider never above the key's limit", async () => {
    const user = await createUser(s, admin);
    await ok(s.url, SET_QUOTA, { input: { userId: user.id, ...ROOMY } }, admin.token);
    const probeKey = await newKey(user);
    fake.reset();
    onTestFinished(() => fake.reset());
    const worst = await worstCase(probeKey.token, user.id);
    const limit = worst.cost * 7n + worst.cost / 2n;
    const { token, key } = await newKey(user, { dailyCostLimitUsd: formatMicros(limit) });
    fake.reset();
    expect(await fifty(token, worst)).toEqual({ ok: 7, '429:insufficient_quota': 43 });
    expect(fake.ledger.calls).toHaveLength(7);
    expect(fake.ledger.spendMicros(IN_PRICE, OUT_PRICE)).toBeLessThanOrEqual(limit);
    const charged = await counter(`key:${key.id}`);
    expect(charged).toBeLessThanOrEqual(limit);
    expect(charged - fake.ledger.spendMicros(IN_PRICE, OUT_PRICE)).toBeLessThanOrEqual(14n);
    const [{ reserved }] = (await s.sql<{ reserved: string }>(
      `SELECT coalesce(sum(reserved_cost_usd), 0)::text AS reserved FROM budget_counters WHERE subject = $1`,
      [`key:${key.id}`],
    )) as [{ reserved: string }];
    expect(toMicros(reserved)).toBe(0n);
  });

  it('project level: calls of every key and user attributed to the project share its limit', async () => {
    const owner = await createUser(s, admin);
    await ok(s.url, SET_QUOTA, { input: { userId: owner.id, ...ROOMY } }, admin.token);
    const project = await createProject(owner);
    const probeKey = await newKey(owner, { projectId: project });
    fake.reset();
    onTestFinished(() => fake.reset());
    const worst = await worstCase(probeKey.token, owner.id);
    const spent = await counter(`project:${project}`);
    expect(spent).toBe(0n); // no budget yet: no project counter
    const limit = worst.cost * 7n + worst.cost / 2n;
    const budget = await ok(
      s.url,
      SET_PROJECT_BUDGET,
      { input: { projectId: project, dailyCostLimitUsd: formatMicros(limit) } },
      admin.token,
    );
    expect(budget.setProjectBudget).toMatchObject({
      projectId: project,
      dailyCostLimitUsd: formatMicros(limit),
      monthlyCostLimitUsd: null,
    });
    const { token } = await newKey(owner, { projectId: project });
    fake.reset();
    expect(await fifty(token, worst)).toEqual({ ok: 7, '429:insufficient_quota': 43 });
    expect(fake.ledger.calls).toHaveLength(7);
    expect(await counter(`project:${project}`)).toBeLessThanOrEqual(limit);
    expect(fake.ledger.spendMicros(IN_PRICE, OUT_PRICE)).toBeLessThanOrEqual(limit);
    const refusal = await client(token)
      .chat.completions.create({ model: MODEL, messages: MESSAGES, max_tokens: 20 })
      .catch((e) => e);
    expect(refusal.error.message).toMatch(/project's daily cost limit/);
    // Only admins set project budgets.
    expect(
      codes(
        await gql(s.url, SET_PROJECT_BUDGET, { input: { projectId: project, dailyCostLimitUsd: '100' } }, owner.token),
      ),
    ).toEqual(['FORBIDDEN']);
  });
});

describe("the organisation's time zone", () => {
  it('puts day and month boundaries at its midnight (default UTC), across a boundary', () => {
    // 23:30 on 30 November in New York is 04:30 UTC on 1 December.
    const before = periodsAt(new Date('2026-12-01T04:30:00Z'), 'America/New_York');
    expect(before.DAY.toISOString()).toBe('2026-11-30T05:00:00.000Z');
    expect(before.MONTH.toISOString()).toBe('2026-11-01T04:00:00.000Z'); // still EDT on 1 November
    const after = periodsAt(new Date('2026-12-01T05:30:00Z'), 'America/New_York');
    expect(after.DAY.toISOString()).toBe('2026-12-01T05:00:00.000Z');
    expect(after.MONTH.toISOString()).toBe('2026-12-01T05:00:00.000Z');
    expect(periodsAt(new Date('2026-12-01T04:30:00Z')).DAY.toISOString()).toBe('2026-12-01T00:00:00.000Z');
    // Kiritimati (UTC+14): its 1 December starts at 10:00 UTC on 30 November.
    expect(periodsAt(new Date('2026-11-30T10:00:00Z'), 'Pacific/Kiritimati').DAY.toISOString()).toBe(
      '2026-11-30T10:00:00.000Z',
    );
    expect(periodsAt(new Date('2026-11-30T09:59:59Z'), 'Pacific/Kiritimati').DAY.toISOString()).toBe(
      '2026-11-29T10:00:00.000Z',
    );
  });

  it('is what a running Steward counts in', async () => {
    const server = await startTestServer({ env: { ORGANISATION_TIME_ZONE: 'Pacific/Kiritimati' } });
    onTestFinished(() => server.close());
    const boss = await firstAdmin(server);
    const r = await ok(server.url, `mutation { startConversation(input: {}) { id } }`, {}, boss.token);
    await ok(
      server.url,
      `mutation($input: SendMessageInput!) { sendMessage(input: $input) { id } }`,
      { input: { conversationId: r.startConversation.id, content: 'Plan the release' } },
      boss.token,
    );
    const rows = await server.sql<{ period: string; start: Date }>(
      `SELECT period, period_start AS start FROM usage_counters WHERE user_id = $1 ORDER BY period`,
      [boss.id],
    );
    const expected = periodsAt(new Date(), 'Pacific/Kiritimati');
    expect(rows.find((x) => x.period === 'DAY')!.start.toISOString()).toBe(expected.DAY.toISOString());
    expect(rows.find((x) => x.period === 'MONTH')!.start.toISOString()).toBe(expected.MONTH.toISOString());
    expect(expected.DAY.getUTCHours()).toBe(10);

    // Over its daily budget, a gateway call is told to retry at its next midnight (10:00 UTC), not UTC's.
    const priced = { inputCostPer1k: IN_PRICE, outputCostPer1k: OUT_PRICE };
    await createFakeProvider(
      server.url,
      { name: 'fake', modelName: MODEL, apiEndpoint: fake.baseURL, ...priced },
      boss.token,
    );
    const key = (await ok(server.url, CREATE_KEY, { input: { name: 'key' } }, boss.token)).createVirtualKey.token;
    await ok(server.url, SET_QUOTA, { input: { userId: boss.id, dailyCostLimitUsd: '0.000001' } }, boss.token);
    const refused = await fetch(`${server.url.replace(/\/graphql$/, '')}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: MESSAGES }),
    });
    expect(refused.status).toBe(429);
    const now = Date.now();
    const nextMidnight = periodsAt(new Date(now + 26 * 3600_000), 'Pacific/Kiritimati').DAY.getTime();
    expect(Math.abs(Number(refused.headers.get('retry-after')) - (nextMidnight - now) / 1000)).toBeLessThan(5);
  });
});
