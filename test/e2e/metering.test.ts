import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';

import { codes, gql, ok, subscribe, wsClient } from '../support/client.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';
import { createFakeProvider } from '../support/providers.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, setRoomyQuota, type TestUser } from '../support/users.js';
import { busListeners } from '../support/wait.js';

/**
 * The metered pipeline end to end: real HTTP and WebSocket, real PostgreSQL, and a local
 * OpenAI-compatible server on loopback behind a provider created through the API.
 */
let s: TestServer;
let fake: FakeOpenAI;
let admin: TestUser;
let providerId: string;

const IN_PRICE = '0.002000'; // dollars per 1k input tokens
const OUT_PRICE = '0.004000';
const MAX_TOKENS = 50;

const CREATE_PROVIDER = `mutation($input: CreateProviderInput!) { createProvider(input: $input) { id } }`;
const SET_QUOTA = `mutation($input: SetUserQuotaInput!) { setUserQuota(input: $input) { requestsPerHour dailyCostLimitUsd } }`;
const START = `mutation($input: StartConversationInput!) { startConversation(input: $input) { id } }`;
const SEND = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { id role content promptTokens completionTokens } }`;
const AGENTS = `{ agents { id type systemPrompt } }`;

beforeAll(async () => {
  fake = await startFakeOpenAI();
  s = await startTestServer({ env: { AI_PROVIDER_FALLBACK: 'false' } });
  admin = await firstAdmin(s);
  const r = await createFakeProvider(
    s.url,
    {
      name: 'fake-openai',
      modelName: 'gpt-test',
      apiEndpoint: `${fake.url}/v1`,
      inputCostPer1k: IN_PRICE,
      outputCostPer1k: OUT_PRICE,
      maxTokens: MAX_TOKENS,
    },
    admin.token,
  );
  providerId = r.createProvider.id;
});
afterAll(async () => {
  await s?.close();
  await fake?.close();
});

async function engineerPrompt(): Promise<{ agentId: string }> {
  const r = await ok(s.url, AGENTS, {}, admin.token);
  const a = r.agents.find((x: { type: string }) => x.type === 'SENIOR_ENGINEER');
  return { agentId: a.id };
}

const start = async (u: TestUser, extra: Record<string, unknown> = {}) =>
  (await ok(s.url, START, { input: { providerId, ...extra } }, u.token)).startConversation.id as string;

/** Micro-dollars as the decimal text PostgreSQL shows for numeric(…, 6) ("0.001500"), written out here. */
const usd = (micros: bigint) => `${micros / 1_000_000n}.${String(micros % 1_000_000n).padStart(6, '0')}`;

/** Steward's books for one user: today's usage counter, its cost records, its prompt logs by status. */
async function books(userId: string) {
  const [day] = await s.sql<{
    cost: string;
    tokens: string;
    requests: number;
    reserved: string;
    reserved_requests: number;
  }>(
    `SELECT cost_usd::text AS cost, tokens::text, requests, reserved_cost_usd::text AS reserved, reserved_requests FROM usage_counters WHERE user_id = $1 AND period = 'DAY'`,
    [userId],
  );
  const [records] = await s.sql<{ n: number; total: string; tin: number; tout: number }>(
    `SELECT count(*)::int AS n, coalesce(sum(total_cost), 0)::numeric(20, 6)::text AS total, coalesce(sum(input_tokens), 0)::int AS tin, coalesce(sum(output_tokens), 0)::int AS tout FROM cost_records WHERE user_id = $1`,
    [userId],
  );
  const logs = await s.sql<{ status: string; n: number; prompt: number; completion: number }>(
    `SELECT status, count(*)::int AS n, coalesce(sum(prompt_tokens), 0)::int AS prompt, coalesce(sum(completion_tokens), 0)::int AS completion FROM prompt_logs WHERE user_id = $1 GROUP BY 1 ORDER BY status::text`,
    [userId],
  );
  return {
    day: day ?? { cost: '0.000000', tokens: '0', requests: 0, reserved: '0.000000', reserved_requests: 0 },
    records: records!,
    logs,
  };
}

describe('the metered pipeline', () => {
  it('admits exactly the affordable number of 50 concurrent calls at the edge of a budget, and never over-spends', async () => {
    const user = await createUser(s, admin);
    const { agentId } = await engineerPrompt();
    // Free input, and every answer exactly MAX_TOKENS long by the fake's own count (1 token per
    // 4 characters), so each call's worst case is what it really costs: MAX_TOKENS × $0.004 per
    // 1k = 4 µ$ per token = 200 µ$, worked out here from the price this test sets.
    const outputOnly = await ok(
      s.url,
      CREATE_PROVIDER,
      {
        input: {
          name: 'fake-output-only',
          providerType: 'OPENAI',
          modelName: 'gpt-test',
          apiEndpoint: `${fake.url}/v1`,
          apiKey: 'sk-platform-key-4444',
          inputCostPer1k: '0',
          outputCostPer1k: OUT_PRICE,
          maxTokens: MAX_TOKENS,
          timeoutSeconds: 5,
        },
      },
      admin.token,
    );
    const perCall = BigInt(MAX_TOKENS) * 4n;
    const affordable = 7;
    const limit = perCall * BigInt(affordable) + perCall / 2n; // 7.5 calls' worth: exactly 7 fit
    await setRoomyQuota(s, admin, user.id, { dailyCostLimitUsd: usd(limit) });
    const conversations = await Promise.all(
      Array.from({ length: 50 }, () => start(user, { agentId, providerId: outputOnly.createProvider.id })),
    );
    // A settled call frees nothing, so however the 50 calls interleave exactly 7 fit; the delay makes them overlap.
    fake.setDefault({ delayMs: 100, reply: 'abcd'.repeat(MAX_TOKENS) });
    onTestFinished(() => fake.reset());

    const prompt = 'Implement the function that parses the config file';
    const results = await Promise.all(
      conversations.map((id) => gql(s.url, SEND, { input: { conversationId: id, content: prompt } }, user.token)),
    );
    const admitted = results.filter((r) => !r.errors);
    const errorCodes = results.flatMap((r) => codes(r));
    const refusedBy = new Set(results.flatMap((r) => (r.errors ?? []).map((e) => e.extensions?.limit)));
    expect({ admitted: admitted.length, errors: [...new Set(errorCodes)], refusedBy: [...refusedBy] }).toEqual({
      admitted: affordable,
      errors: ['QUOTA_EXCEEDED'],
      refusedBy: ['dailyCostLimitUsd'],
    });

    // The provider was asked exactly 7 times (refusals never reached it) and served MAX_TOKENS each.
    expect(fake.completions).toHaveLength(affordable);
    expect(fake.ledger.calls.map((c) => c.completionTokens)).toEqual(Array(affordable).fill(MAX_TOKENS));
    const served = fake.ledger.spendMicros('0', OUT_PRICE);
    expect(served).toBe(perCall * BigInt(affordable));
    expect(served).toBeLessThanOrEqual(limit);

    const b = await books(user.id);
    expect(b.day).toMatchObject({ cost: usd(served), reserved: '0.000000', reserved_requests: 0 });
    expect(Number(b.day.tokens)).toBe(fake.ledger.totals().promptTokens + fake.ledger.totals().completionTokens);
    expect(b.records).toEqual({
      n: affordable,
      total: usd(served),
      tin: fake.ledger.totals().promptTokens,
      tout: fake.ledger.totals().completionTokens,
    });
    expect(b.logs).toEqual([
      { status: 'BLOCKED', n: 50 - affordable, prompt: 0, completion: 0 },
      {
        status: 'SUCCESS',
        n: affordable,
        prompt: fake.ledger.totals().promptTokens,
        completion: fake.ledger.totals().completionTokens,
      },
    ]);
  });

  it('answers many concurrent calls of one user without a deadlock between reserving and settling', async () => {
    const user = await createUser(s, admin);
    await setRoomyQuota(s, admin, user.id);
    const conversations = await Promise.all(Array.from({ length: 30 }, () => start(user)));
    fake.reset();
    const results = await Promise.all(
      conversations.map((id) =>
        gql(s.url, SEND, { input: { conversationId: id, content: 'Refactor the parser' } }, user.token),
      ),
    );
    expect(results.flatMap((r) => codes(r))).toEqual([]);
    // 30 served by the provider, each on the books with the provider's tokens; at $0.002 and
    // $0.004 per 1k (2 and 4 µ$ per token) the fake's spend is exact, so Steward's must equal it.
    expect(fake.ledger.calls).toHaveLength(30);
    const served = fake.ledger.totals();
    const b = await books(user.id);
    expect(b.day).toMatchObject({
      requests: 30,
      reserved_requests: 0,
      reserved: '0.000000',
      cost: usd(fake.ledger.spendMicros(IN_PRICE, OUT_PRICE)),
      tokens: String(served.promptTokens + served.completionTokens),
    });
    expect(b.records).toEqual({
      n: 30,
      total: usd(fake.ledger.spendMicros(IN_PRICE, OUT_PRICE)),
      tin: served.promptTokens,
      tout: served.completionTokens,
    });
    expect(b.logs).toEqual([
      { status: 'SUCCESS', n: 30, prompt: served.promptTokens, completion: served.completionTokens },
    ]);
  });

  it('charges nothing for a provider failure and logs it as ERROR', async () => {
    const user = await createUser(s, admin);
    const id = await start(user);
    fake.reset();
    fake.script({ status: 500 });
    onTestFinished(() => fake.reset());
    const r = await gql(s.url, SEND, { input: { conversationId: id, content: 'Fix the failing build' } }, user.token);
    expect(codes(r)).toEqual(['PROVIDER_UNAVAILABLE']);
    // Asked once (no retry without fallback), served nothing.
    expect(fake.completions).toHaveLength(1);
    expect(fake.ledger.calls).toHaveLength(0);
    const [log] = await s.sql<{ status: string; error_message: string; cost_usd: string }>(
      `SELECT status, error_message, cost_usd::text FROM prompt_logs WHERE user_id = $1`,
      [user.id],
    );
    expect(log!.status).toBe('ERROR');
    expect(log!.cost_usd ?? '0.000000').toBe('0.000000');
    const [counter] = await s.sql<{ cost: string; requests: number; reserved_requests: number }>(
      `SELECT cost_usd::text AS cost, requests, reserved_requests FROM usage_counters WHERE user_id = $1 AND period = 'DAY'`,
      [user.id],
    );
    expect(counter).toEqual({ cost: '0.000000', requests: 0, reserved_requests: 0 });
    expect(await s.sql(`SELECT 1 FROM cost_records WHERE user_id = $1`, [user.id])).toHaveLength(0);
    expect(
      await s.sql(`SELECT 1 FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE c.user_id = $1`, [
        user.id,
      ]),
    ).toHaveLength(0);
  });

  it('refuses the call past the requests-per-hour limit with RATE_LIMITED', async () => {
    const user = await createUser(s, admin);
    await ok(s.url, SET_QUOTA, { input: { userId: user.id, requestsPerHour: 2 } }, admin.token);
    const id = await start(user);
    fake.reset();
    onTestFinished(() => fake.reset());
    for (let i = 0; i < 2; i++)
      await ok(s.url, SEND, { input: { conversationId: id, content: `Write test number ${i}` } }, user.token);
    const r = await gql(s.url, SEND, { input: { conversationId: id, content: 'One more test please' } }, user.token);
    expect(codes(r)).toEqual(['RATE_LIMITED']);
    // The refused call never reached the provider; the two it served are both on the books.
    expect(fake.completions).toHaveLength(2);
    expect(fake.ledger.calls).toHaveLength(2);
    const b = await books(user.id);
    expect(b.day).toMatchObject({ requests: 2, cost: usd(fake.ledger.spendMicros(IN_PRICE, OUT_PRICE)) });
    expect(b.records.n).toBe(2);
    expect(b.logs.find((l) => l.status === 'SUCCESS')?.n).toBe(2);
  });

  it("applies the tier's monthly message limit, and a higher tier lifts it", async () => {
    const user = await createUser(s, admin);
    const id = await start(user);
    fake.reset();
    onTestFinished(() => fake.reset());
    // 49 of BASIC's 50 messages already used this month.
    await s.sql(
      `INSERT INTO usage_counters (user_id, period, period_start, requests, messages) VALUES ($1, 'MONTH', date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', 49, 49)`,
      [user.id],
    );
    await ok(s.url, SEND, { input: { conversationId: id, content: 'Document the API' } }, user.token);
    const refused = await gql(s.url, SEND, { input: { conversationId: id, content: 'Document it again' } }, user.token);
    expect(codes(refused)).toEqual(['QUOTA_EXCEEDED']);
    expect(refused.errors![0]!.extensions!.limit).toBe('monthlyMessageLimit');
    expect(fake.completions).toHaveLength(1); // the refused call never reached the provider
    await ok(
      s.url,
      `mutation($input: UpdateUserInput!) { updateUser(input: $input) { tier } }`,
      { input: { id: user.id, tier: 'PREMIUM' } },
      admin.token,
    );
    await ok(s.url, SEND, { input: { conversationId: id, content: 'Document it again' } }, user.token);
    expect(fake.ledger.calls).toHaveLength(2);
    expect((await books(user.id)).records.total).toBe(usd(fake.ledger.spendMicros(IN_PRICE, OUT_PRICE)));
  });

  it('fires each cost alert once per period, to the user and admins only', async () => {
    const user = await createUser(s, admin);
    const other = await createUser(s, admin);
    // Free input, $1 per 1k output tokens, at most 10, and answers of 10 tokens by the fake's own
    // count: every call costs (and reserves) exactly $0.01.
    const priced = await ok(
      s.url,
      CREATE_PROVIDER,
      {
        input: {
          name: 'fake-output-priced',
          providerType: 'OPENAI',
          modelName: 'gpt-test',
          apiEndpoint: `${fake.url}/v1`,
          apiKey: 'sk-platform-key-5555',
          inputCostPer1k: '0',
          outputCostPer1k: '1.000000',
          maxTokens: 10,
          timeoutSeconds: 5,
        },
      },
      admin.token,
    );
    const id = (await ok(s.url, START, { input: { providerId: priced.createProvider.id } }, user.token))
      .startConversation.id;
    fake.reset();
    fake.setDefault({ reply: 'abcd'.repeat(10) });
    onTestFinished(() => fake.reset());
    await ok(
      s.url,
      SET_QUOTA,
      { input: { userId: user.id, dailyCostLimitUsd: '0.025000', monthlyCostLimitUsd: '1.000000' } },
      admin.token,
    );
    const sockets = [wsClient(s.wsUrl, user.token), wsClient(s.wsUrl, admin.token), wsClient(s.wsUrl, other.token)];
    const ALERTS = `subscription { costAlertTriggered { alertType thresholdPercentage spentUsd limitUsd } }`;
    const [mine, admins, others] = sockets.map((c) => subscribe(c, ALERTS));
    await busListeners(s).registered(3);
    // $0.01 (40%), $0.02 (80%: DAILY_80); a third would reach $0.03 > $0.025: refused before the call.
    await ok(s.url, SEND, { input: { conversationId: id, content: 'Review this code' } }, user.token);
    await ok(s.url, SEND, { input: { conversationId: id, content: 'Review this code again' } }, user.token);
    const alert = await mine!.next();
    expect(alert.costAlertTriggered).toMatchObject({
      alertType: 'DAILY_80',
      thresholdPercentage: 80,
      spentUsd: usd(fake.ledger.spendMicros('0', '1.000000')), // what the provider served: $0.02
      limitUsd: '0.025000',
    });
    expect(fake.ledger.totals()).toEqual({ calls: 2, promptTokens: expect.any(Number), completionTokens: 20 });
    expect((await admins!.next()).costAlertTriggered.alertType).toBe('DAILY_80');
    // The sentinel: the other user's own alert (one $0.01 call against $0.0125, 80%) must reach
    // them; the user's alert, published before it, must not have come first.
    await ok(s.url, SET_QUOTA, { input: { userId: other.id, dailyCostLimitUsd: '0.012500' } }, admin.token);
    const otherConversation = (await ok(s.url, START, { input: { providerId: priced.createProvider.id } }, other.token))
      .startConversation.id;
    await ok(s.url, SEND, { input: { conversationId: otherConversation, content: 'Review mine' } }, other.token);
    expect((await others!.next()).costAlertTriggered).toMatchObject({ alertType: 'DAILY_80', limitUsd: '0.012500' });
    expect(others!.received).toHaveLength(1);
    const rows = await s.sql<{ alert_type: string }>(`SELECT alert_type FROM cost_alerts WHERE user_id = $1`, [
      user.id,
    ]);
    expect(rows.map((r) => r.alert_type)).toEqual(['DAILY_80']);
    const refused = await gql(s.url, SEND, { input: { conversationId: id, content: 'And once more' } }, user.token);
    expect(codes(refused)).toEqual(['QUOTA_EXCEEDED']);
    // Raising the limit to $0.03 puts spend at 66%: another call ($0.03, 100%) fires DAILY_90 and DAILY_100 once, never DAILY_80 again.
    await ok(
      s.url,
      SET_QUOTA,
      { input: { userId: user.id, dailyCostLimitUsd: '0.030000', monthlyCostLimitUsd: '1.000000' } },
      admin.token,
    );
    await ok(s.url, SEND, { input: { conversationId: id, content: 'And once more' } }, user.token);
    const all = await s.sql<{ alert_type: string }>(
      `SELECT alert_type FROM cost_alerts WHERE user_id = $1 ORDER BY alert_type`,
      [user.id],
    );
    expect(all.map((r) => r.alert_type).sort()).toEqual(['DAILY_100', 'DAILY_80', 'DAILY_90']);
    const notes = await s.sql(`SELECT 1 FROM notifications WHERE user_id = $1 AND type = 'ALERT'`, [user.id]);
    expect(notes).toHaveLength(3);
    for (const c of sockets) await c.dispose();
  });

  it('blocks a user whose off-task prompts raise the deviation score to the threshold, and ends its sessions', async () => {
    const server = await startTestServer({ env: { DEVIATION_BLOCK_THRESHOLD: '10' } });
    try {
      const boss = await firstAdmin(server);
      const user = await createUser(server, boss);
      const project = (
        await ok(server.url, `mutation { createProject(input: { name: "Governed" }) { id } }`, {}, user.token)
      ).createProject.id;
      const task = (
        await ok(
          server.url,
          `mutation($input: CreateTaskInput!) { createTask(input: $input) { id } }`,
          { input: { projectId: project, title: 'Build the API', allowedIntents: ['coding', 'testing'] } },
          user.token,
        )
      ).createTask.id;
      await ok(
        server.url,
        `mutation($i: AssignTaskInput!) { assignTask(input: $i) { id } }`,
        { i: { taskId: task, userId: user.id } },
        user.token,
      );
      const governed = await ok(
        server.url,
        CREATE_PROVIDER,
        {
          input: {
            name: 'fake-governed',
            providerType: 'OPENAI',
            modelName: 'gpt-test',
            apiEndpoint: `${fake.url}/v1`,
            apiKey: 'sk-platform-key-7777',
            inputCostPer1k: IN_PRICE,
            outputCostPer1k: OUT_PRICE,
            maxTokens: MAX_TOKENS,
            timeoutSeconds: 5,
          },
        },
        boss.token,
      );
      const conversation = (
        await ok(
          server.url,
          START,
          { input: { projectId: project, taskId: task, providerId: governed.createProvider.id } },
          user.token,
        )
      ).startConversation.id;
      fake.reset();
      onTestFinished(() => fake.reset());

      // On task: answered, score unchanged (it never goes below 0).
      await ok(
        server.url,
        SEND,
        { input: { conversationId: conversation, content: 'Implement the endpoint and write a unit test' } },
        user.token,
      );
      // Off task: each confident off-task prompt adds 10 × confidence.
      await ok(
        server.url,
        SEND,
        { input: { conversationId: conversation, content: 'Write a poem and a song about my vacation' } },
        user.token,
      );
      const blocked = await gql(
        server.url,
        SEND,
        { input: { conversationId: conversation, content: 'Another poem, a story and a joke about the holiday' } },
        user.token,
      );
      expect(codes(blocked)).toEqual(['FORBIDDEN']);
      expect(fake.completions).toHaveLength(2); // the blocked prompt never reached the provider

      const [u] = await server.sql<{ is_blocked: boolean; blocked_reason: string; deviation_score: string }>(
        `SELECT is_blocked, blocked_reason, deviation_score::text FROM users WHERE id = $1`,
        [user.id],
      );
      expect(u!.is_blocked).toBe(true);
      expect(u!.blocked_reason).toMatch(/deviation score/);
      expect(Number(u!.deviation_score)).toBeGreaterThanOrEqual(10);
      expect((await gql(server.url, '{ me { id } }', {}, user.token)).status).toBe(401); // sessions ended
      const logs = await server.sql<{ status: string; intent: string; deviation_delta: string }>(
        `SELECT status, intent, deviation_delta::text FROM prompt_logs WHERE user_id = $1 ORDER BY created_at`,
        [user.id],
      );
      expect(logs.map((l) => l.status)).toEqual(['SUCCESS', 'SUCCESS', 'BLOCKED']);
      expect(logs[1]!.intent).toBe('creative_writing');
      expect(
        await server.sql(`SELECT 1 FROM notifications WHERE user_id = $1 AND type = 'ALERT'`, [boss.id]),
      ).toHaveLength(1);
      expect(
        await server.sql(`SELECT 1 FROM audit_events WHERE action = 'user.autoBlock' AND entity_id = $1`, [user.id]),
      ).toHaveLength(1);
    } finally {
      await server.close();
    }
  });

  it('keeps prompt logs in monthly partitions created ahead, and drops those past retention', async () => {
    await s.sql(
      `CREATE TABLE IF NOT EXISTS prompt_logs_2001_01 PARTITION OF prompt_logs FOR VALUES FROM ('2001-01-01 00:00:00+00') TO ('2001-02-01 00:00:00+00')`,
    );
    const { ran, result } = await s.app.runtime.scheduler.runNow('ai.promptLogPartitions');
    expect(ran).toBe(true);
    expect((result as { dropped: string[] }).dropped).toEqual(['prompt_logs_2001_01']);
    const parts = await s.sql<{ name: string }>(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'prompt_logs' ORDER BY 1`,
    );
    const month = (ahead: number) => {
      const d = new Date();
      const m = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + ahead, 1));
      return `prompt_logs_${m.getUTCFullYear()}_${String(m.getUTCMonth() + 1).padStart(2, '0')}`;
    };
    expect(parts.map((p) => p.name)).toEqual(expect.arrayContaining([month(0), month(1), month(2)]));
    expect(parts.map((p) => p.name)).not.toContain('prompt_logs_2001_01');
  });
});
