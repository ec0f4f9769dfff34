import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { formatMicros, toMicros } from '../../src/modules/billing/money.js';
import { ok } from '../support/client.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';
import { createFakeProvider } from '../support/providers.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, type TestUser } from '../support/users.js';

/**
 * What the gateway's two-statement hot path keeps in memory must still follow every
 * change at once — a member removed from the task's project, a provider's new price — and
 * what it reports (the remaining budget, a project's cost alerts) must agree with what the
 * fake provider itself counted.
 */
let s: TestServer;
let fake: FakeOpenAI;
let admin: TestUser;
let base: string;
let providerId: string;

const MODEL = 'gpt-4o-mini';
const IN_PRICE = '0.002000';
const OUT_PRICE = '0.004000';
const MESSAGES: OpenAI.Chat.ChatCompletionMessageParam[] = [
  { role: 'user', content: 'Write a unit test for the parser module' },
];
const ROOMY = {
  requestsPerHour: 1000,
  dailyTokenLimit: 1_000_000,
  monthlyTokenLimit: 1_000_000,
  monthlyMessageLimit: 1000,
  dailyCostLimitUsd: '100',
  monthlyCostLimitUsd: '1000',
};

const client = (key: string, headers: Record<string, string> = {}) =>
  new OpenAI({ apiKey: key, baseURL: `${base}/v1`, maxRetries: 0, defaultHeaders: headers });

async function member(role: 'CONTRIBUTOR' | 'MAINTAINER', projectId: string): Promise<TestUser> {
  const u = await createUser(s, admin);
  await ok(
    s.url,
    `mutation($input: SetUserQuotaInput!) { setUserQuota(input: $input) { requestsPerHour } }`,
    {
      input: { userId: u.id, ...ROOMY },
    },
    admin.token,
  );
  await ok(
    s.url,
    `mutation($input: AddProjectMemberInput!) { addProjectMember(input: $input) { role } }`,
    {
      input: { projectId, userId: u.id, role },
    },
    admin.token,
  );
  return u;
}

async function key(u: TestUser, input: Record<string, unknown> = {}): Promise<string> {
  const r = await ok(
    s.url,
    `mutation($input: CreateVirtualKeyInput!) { createVirtualKey(input: $input) { token } }`,
    {
      input: { name: 'fast', ...input },
    },
    u.token,
  );
  return r.createVirtualKey.token as string;
}

const project = async () =>
  (await ok(s.url, `mutation { createProject(input: { name: "Fast ${Math.random()}" }) { id } }`, {}, admin.token))
    .createProject.id as string;

const task = async (projectId: string) =>
  (
    await ok(
      s.url,
      `mutation($input: CreateTaskInput!) { createTask(input: $input) { id } }`,
      {
        input: { projectId, title: 'Parser tests', allowedIntents: ['coding', 'testing'] },
      },
      admin.token,
    )
  ).createTask.id as string;

beforeAll(async () => {
  fake = await startFakeOpenAI();
  s = await startTestServer();
  base = s.url.replace(/\/graphql$/, '');
  admin = await firstAdmin(s);
  providerId = (
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
    )
  ).createProvider.id;
});
afterAll(async () => {
  await s?.close();
  await fake?.close();
});

describe('the gateway hot path', () => {
  it('tells what is left of the tightest budget, as the provider counted the call', async () => {
    const p = await project();
    const u = await member('CONTRIBUTOR', p);
    const k = await key(u, { dailyCostLimitUsd: '1' });
    fake.setDefault({ usage: { prompt_tokens: 100, completion_tokens: 10 } });
    const { data, response } = await client(k)
      .chat.completions.create({ model: MODEL, messages: MESSAGES, max_tokens: 20 })
      .withResponse();
    expect(data.choices[0]!.message.content).toBeTruthy();
    // 100 × $0.002/1k + 10 × $0.004/1k, as the fake reported serving it
    const spent = toMicros('0.000240');
    expect(fake.ledger.calls.at(-1)!.reportedUsage).toEqual({ prompt_tokens: 100, completion_tokens: 10 });
    expect(response.headers.get('x-steward-cost-usd')).toBe(formatMicros(spent));
    expect(response.headers.get('x-steward-budget-limit')).toBe('key/day');
    expect(response.headers.get('x-steward-budget-remaining-usd')).toBe(formatMicros(toMicros('1') - spent));

    // A stream's headers go out before the answer: after reserving its worst case, never more than the limit.
    const stream = await client(k)
      .chat.completions.create({ model: MODEL, messages: MESSAGES, max_tokens: 20, stream: true })
      .withResponse();
    for await (const _ of stream.data) void _;
    const left = toMicros(stream.response.headers.get('x-steward-budget-remaining-usd')!);
    expect(left).toBeLessThan(toMicros('1') - spent);
    expect(stream.response.headers.get('x-steward-budget-limit')).toBe('key/day');
  });

  it('settles concurrent calls of several users and keys together, each recorded and charged exactly once', async () => {
    const p = await project();
    const users = await Promise.all([1, 2, 3].map(() => member('CONTRIBUTOR', p)));
    const keys = await Promise.all(users.map((u) => key(u, { dailyCostLimitUsd: '5' })));
    fake.setDefault({ usage: { prompt_tokens: 120, completion_tokens: 15 } });
    const servedBefore = fake.ledger.calls.length;
    // 12 calls a key at once: their settlements overlap, so most go out in shared statements.
    const answers = await Promise.all(
      keys.flatMap((k) =>
        Array.from({ length: 12 }, () =>
          client(k).chat.completions.create({ model: MODEL, messages: MESSAGES, max_tokens: 20 }),
        ),
      ),
    );
    expect(answers).toHaveLength(36);
    expect(fake.ledger.calls.length - servedBefore).toBe(36);
    const each = toMicros('0.000300'); // 120 × $0.002/1k + 15 × $0.004/1k, as the fake reported serving it
    for (const u of users) {
      const books = await s.sql<{ period: string; requests: number; reserved: number; cost: string }>(
        `SELECT period::text, requests, reserved_requests AS reserved, cost_usd::text AS cost FROM usage_counters WHERE user_id = $1 ORDER BY period::text`,
        [u.id],
      );
      expect(books.map((b) => [b.period, b.requests, b.reserved, toMicros(b.cost)])).toEqual(
        ['DAY', 'HOUR', 'MONTH'].map((period) => [period, 12, 0, each * 12n]),
      );
      const [logs] = await s.sql<{ n: number; cost: string; records: number; daily: number }>(
        `SELECT count(*)::int AS n, sum(cost_usd)::text AS cost,
                (SELECT count(*)::int FROM cost_records WHERE user_id = $1) AS records,
                (SELECT sum(requests)::int FROM usage_daily WHERE user_id = $1) AS daily
           FROM prompt_logs WHERE user_id = $1 AND status = 'SUCCESS'`,
        [u.id],
      );
      expect(logs).toEqual({ n: 12, cost: expect.any(String), records: 12, daily: 12 });
      expect(toMicros(logs!.cost)).toBe(each * 12n);
    }
    const budgets = await s.sql<{ requests: number; reserved: number; cost: string }>(
      `SELECT requests, reserved_requests AS reserved, cost_usd::text AS cost FROM budget_counters
        WHERE period = 'DAY' AND subject IN (SELECT 'key:' || id FROM api_tokens WHERE user_id = ANY($1::uuid[]))`,
      [users.map((u) => u.id)],
    );
    expect(budgets.map((b) => [b.requests, b.reserved, toMicros(b.cost)])).toEqual(
      [1, 2, 3].map(() => [12, 0, each * 12n]),
    );
  });

  it("alerts a project's owner and maintainers once its spend crosses 80% of its daily limit", async () => {
    const p = await project();
    const maintainer = await member('MAINTAINER', p);
    const caller = await member('CONTRIBUTOR', p);
    const outsider = await member('CONTRIBUTOR', await project());
    const k = await key(caller, { projectId: p });
    fake.setDefault({ usage: { prompt_tokens: 1000, completion_tokens: 0 } }); // $0.002 a call, by the fake's count
    // $0.0023: one call (reserving less than the limit) is 86% of it.
    await ok(
      s.url,
      `mutation($input: SetProjectBudgetInput!) { setProjectBudget(input: $input) { projectId } }`,
      {
        input: { projectId: p, dailyCostLimitUsd: '0.0023' },
      },
      admin.token,
    );
    await client(k).chat.completions.create({ model: MODEL, messages: MESSAGES, max_tokens: 1 });
    expect(fake.ledger.calls.at(-1)!.reportedUsage).toEqual({ prompt_tokens: 1000, completion_tokens: 0 });

    const alerts = async (u: TestUser) =>
      (
        await ok(
          s.url,
          `{ costAlerts(first: 10) { edges { node { id alertType thresholdPercentage projectId spentUsd limitUsd } } } }`,
          {},
          u.token,
        )
      ).costAlerts.edges.map((e: { node: Record<string, unknown> }) => e.node);
    const seen = await alerts(maintainer);
    expect(seen).toEqual([
      expect.objectContaining({
        alertType: 'DAILY_80',
        thresholdPercentage: 80,
        projectId: p,
        spentUsd: '0.002000',
        limitUsd: '0.002300',
      }),
    ]);
    expect((await alerts(admin)).filter((a: { projectId: string }) => a.projectId === p)).toHaveLength(1);
    expect(await alerts(outsider)).toEqual([]);
    expect(await alerts(caller)).toEqual([]); // a contributor: not the project's to watch
    const notes = await s.sql<{ user_id: string }>(
      `SELECT user_id FROM notifications WHERE data->>'projectId' = $1 ORDER BY user_id`,
      [p],
    );
    expect(notes.map((n) => n.user_id).sort()).toEqual([admin.id, maintainer.id].sort());

    // The maintainer acknowledges it. The next call still fits its worst case ($0.002 spent + what it reserves),
    // is charged what the fake reports ($0.004 in all: 173%): the 90 and 100% alerts, each once.
    await ok(
      s.url,
      `mutation($id: ID!) { acknowledgeCostAlert(id: $id) { acknowledged } }`,
      { id: seen[0].id },
      maintainer.token,
    );
    await client(k).chat.completions.create({ model: MODEL, messages: MESSAGES, max_tokens: 1 });
    const after = await alerts(maintainer);
    expect(after.map((a: { alertType: string }) => a.alertType).sort()).toEqual(['DAILY_100', 'DAILY_80', 'DAILY_90']);
    // Over the limit now: refused before the provider, and no alert again.
    const served = fake.ledger.calls.length;
    await expect(
      client(k).chat.completions.create({ model: MODEL, messages: MESSAGES, max_tokens: 1 }),
    ).rejects.toMatchObject({ status: 429 });
    expect(fake.ledger.calls.length).toBe(served);
    expect(await alerts(maintainer)).toHaveLength(3);
  });

  it("refuses at once a member removed from the task's project, though its key's binding was cached", async () => {
    const p = await project();
    const t = await task(p);
    const u = await member('CONTRIBUTOR', p);
    const k = await key(u);
    const calls = fake.ledger.calls.length;
    const c = client(k, { 'X-Steward-Task': t });
    await c.chat.completions.create({ model: MODEL, messages: MESSAGES, max_tokens: 5 });
    await c.chat.completions.create({ model: MODEL, messages: MESSAGES, max_tokens: 5 }); // from the cache
    await ok(
      s.url,
      `mutation($input: ProjectMemberRefInput!) { removeProjectMember(input: $input) }`,
      {
        input: { projectId: p, userId: u.id },
      },
      admin.token,
    );
    await expect(c.chat.completions.create({ model: MODEL, messages: MESSAGES, max_tokens: 5 })).rejects.toMatchObject({
      status: 404,
    });
    expect(fake.ledger.calls.length).toBe(calls + 2);
  });

  it("charges a provider's new price from the very next call by model name", async () => {
    const p = await project();
    const u = await member('CONTRIBUTOR', p);
    const k = await key(u);
    fake.setDefault({ usage: { prompt_tokens: 1000, completion_tokens: 1000 } });
    const first = await client(k)
      .chat.completions.create({ model: MODEL, messages: MESSAGES, max_tokens: 5 })
      .withResponse();
    expect(first.response.headers.get('x-steward-cost-usd')).toBe('0.006000');
    await ok(
      s.url,
      `mutation($input: UpdateProviderInput!) { updateProvider(input: $input) { id } }`,
      {
        input: { id: providerId, inputCostPer1k: '0.010000' },
      },
      admin.token,
    );
    const second = await client(k)
      .chat.completions.create({ model: MODEL, messages: MESSAGES, max_tokens: 5 })
      .withResponse();
    expect(fake.ledger.calls.at(-1)!.reportedUsage).toEqual({ prompt_tokens: 1000, completion_tokens: 1000 });
    expect(second.response.headers.get('x-steward-cost-usd')).toBe('0.014000');
    await ok(
      s.url,
      `mutation($input: UpdateProviderInput!) { updateProvider(input: $input) { id } }`,
      {
        input: { id: providerId, inputCostPer1k: IN_PRICE },
      },
      admin.token,
    );
  });
});
