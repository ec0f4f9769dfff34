import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';

import { formatMicros, toMicros } from '../../src/modules/billing/money.js';
import { codes, gql, ok } from '../support/client.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';
import { createFakeProvider } from '../support/providers.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, setRoomyQuota, type TestUser } from '../support/users.js';

/**
 * No AI call without a record and a charge, checked against what the fake provider itself
 * counted (calls it served, tokens it wrote, spend at its price), never Steward's own books.
 * Over real HTTP against a Steward with real PostgreSQL.
 */
let s: TestServer;
let fake: FakeOpenAI;
let backup: FakeOpenAI;
let admin: TestUser;
let providerId: string;

const IN_PRICE = '0.002000';
const OUT_PRICE = '0.004000';
const MAX_TOKENS = 50;

const SET_QUOTA = `mutation($input: SetUserQuotaInput!) { setUserQuota(input: $input) { requestsPerHour } }`;
const START = `mutation($input: StartConversationInput!) { startConversation(input: $input) { id } }`;
const SEND = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { id content promptTokens completionTokens } }`;

const createProvider = async (name: string, baseURL: string, extra: Record<string, unknown> = {}) =>
  (
    await createFakeProvider(
      s.url,
      {
        name,
        modelName: 'gpt-test',
        apiEndpoint: baseURL,
        inputCostPer1k: IN_PRICE,
        outputCostPer1k: OUT_PRICE,
        maxTokens: MAX_TOKENS,
        ...extra,
      },
      admin.token,
    )
  ).createProvider.id as string;

beforeAll(async () => {
  [fake, backup] = await Promise.all([startFakeOpenAI(), startFakeOpenAI()]);
  s = await startTestServer({ env: { AI_PROVIDER_FALLBACK: 'true' } });
  admin = await firstAdmin(s);
  providerId = await createProvider('primary', fake.baseURL);
});
afterAll(async () => {
  await s?.close();
  await fake?.close();
  await backup?.close();
});

const start = async (u: TestUser, provider = providerId) =>
  (await ok(s.url, START, { input: { providerId: provider } }, u.token)).startConversation.id as string;

async function books(userId: string) {
  const [day] = await s.sql<{
    cost: string;
    tokens: string;
    requests: number;
    reserved_requests: number;
    reserved: string;
  }>(
    `SELECT cost_usd::text AS cost, tokens::text, requests, reserved_requests, reserved_cost_usd::text AS reserved FROM usage_counters WHERE user_id = $1 AND period = 'DAY'`,
    [userId],
  );
  const [records] = await s.sql<{ n: number; total: string; tin: number; tout: number }>(
    `SELECT count(*)::int AS n, coalesce(sum(total_cost), 0)::text AS total, coalesce(sum(input_tokens), 0)::int AS tin, coalesce(sum(output_tokens), 0)::int AS tout FROM cost_records WHERE user_id = $1`,
    [userId],
  );
  const logs = await s.sql<{
    status: string;
    error_message: string | null;
    prompt_tokens: number | null;
    completion_tokens: number | null;
    cost_usd: string | null;
    response: string | null;
  }>(
    `SELECT status, error_message, prompt_tokens, completion_tokens, cost_usd::text, response FROM prompt_logs WHERE user_id = $1 ORDER BY created_at`,
    [userId],
  );
  return {
    day: day ?? { cost: '0.000000', tokens: '0', requests: 0, reserved_requests: 0, reserved: '0.000000' },
    records: records!,
    logs,
  };
}

/** Steward charges each call's input and output rounded up to the micro-dollar: at most 2 µ$ per call above the fake's exact spend. */
function expectChargedAsServed(charged: string, served: bigint, calls: number) {
  const c = toMicros(charged);
  expect(c).toBeGreaterThanOrEqual(served);
  expect(c - served).toBeLessThanOrEqual(BigInt(2 * calls));
}

describe('metering counted at the provider', () => {
  it('settles an answer containing U+0000: logged with the NUL escaped, charged what the provider served', async () => {
    const user = await createUser(s, admin);
    const id = await start(user);
    fake.reset();
    fake.script({ chunks: ['Here ', 'is a ', 'NUL \u0000 ', 'byte.'] });
    const r = await ok(
      s.url,
      SEND,
      { input: { conversationId: id, content: `${'x'.repeat(2100)} please answer` } },
      user.token,
    );
    expect(r.sendMessage.content).toBe('Here is a NUL \\u0000 byte.');
    expect(fake.ledger.calls).toHaveLength(1);
    const b = await books(user.id);
    expect(b.logs).toHaveLength(1);
    expect(b.logs[0]).toMatchObject({ status: 'SUCCESS', response: 'Here is a NUL \\u0000 byte.' });
    const served = fake.ledger.calls[0]!;
    expect({ in: b.records.tin, out: b.records.tout }).toEqual({
      in: served.promptTokens,
      out: served.completionTokens,
    });
    expectChargedAsServed(b.day.cost, fake.ledger.spendMicros(IN_PRICE, OUT_PRICE), 1);
    expect(b.day.requests).toBe(1);
    expect(b.day.reserved_requests).toBe(0);
  });

  it('charges what was streamed when the provider stalls after sending tokens, and logs it ERROR with the reason', async () => {
    const user = await createUser(s, admin);
    const stalling = await createProvider('stalling', fake.baseURL, { timeoutSeconds: 1 });
    const id = await start(user, stalling);
    fake.reset();
    fake.script({ chunks: ['The ', 'first ', 'words ', 'and the rest'], stallAfterChunks: 3 });
    const r = await gql(s.url, SEND, { input: { conversationId: id, content: 'Explain the build' } }, user.token);
    expect(codes(r)).toEqual(['PROVIDER_UNAVAILABLE']);
    expect(r.errors![0]!.message).toMatch(/charged/);
    expect(fake.ledger.calls).toHaveLength(1);
    const served = fake.ledger.calls[0]!;
    expect(served).toMatchObject({ complete: false, text: 'The first words ' });
    const b = await books(user.id);
    expect(b.logs).toHaveLength(1);
    expect(b.logs[0]!.status).toBe('ERROR');
    expect(b.logs[0]!.error_message).toMatch(/did not answer within 1000 ms.*charged for the \d+ tokens streamed/);
    expect({ in: b.logs[0]!.prompt_tokens, out: b.logs[0]!.completion_tokens }).toEqual({
      in: served.promptTokens,
      out: served.completionTokens,
    });
    expect(b.records.n).toBe(1);
    expectChargedAsServed(b.day.cost, fake.ledger.spendMicros(IN_PRICE, OUT_PRICE), 1);
    expect(toMicros(b.records.total)).toBe(toMicros(b.day.cost));
    expect(b.day).toMatchObject({ requests: 1, reserved_requests: 0, reserved: '0.000000' });
  });

  it('refuses by the daily token limit before the provider is asked: the provider served exactly the calls that fit', async () => {
    const user = await createUser(s, admin);
    const id = await start(user);
    fake.reset();
    const prompt = 'Write the parser';
    // Learn the worst case one call reserves (prompt bound + maxTokens) from the first call's counters.
    await setRoomyQuota(s, admin, user.id);
    fake.setDefault({ delayMs: 300 });
    const inFlight = gql(s.url, SEND, { input: { conversationId: id, content: prompt } }, user.token);
    await fake.received(1);
    const [held] = await s.sql<{ tokens: number }>(`SELECT tokens FROM quota_reservations WHERE user_id = $1`, [
      user.id,
    ]);
    await inFlight;
    const used = Number((await books(user.id)).day.tokens);
    // Room for two more worst cases and a half: two fit, the third is refused.
    await setRoomyQuota(s, admin, user.id, { dailyTokenLimit: used + held!.tokens * 2 + Math.floor(held!.tokens / 2) });
    // Every answer now uses exactly its worst case, so a settled call frees nothing of its reservation.
    fake.setDefault({ usage: { prompt_tokens: held!.tokens - MAX_TOKENS, completion_tokens: MAX_TOKENS } });
    onTestFinished(() => fake.reset());
    const results = [];
    for (let i = 0; i < 4; i++)
      results.push(
        await gql(s.url, SEND, { input: { conversationId: await start(user), content: prompt } }, user.token),
      );
    const refusals = results.flatMap((r) => (r.errors ?? []).map((e) => [e.extensions?.code, e.extensions?.limit]));
    expect(fake.ledger.calls).toHaveLength(3); // the first call and the two that fit
    expect(refusals.length).toBeGreaterThanOrEqual(1);
    expect(new Set(refusals.map((x) => x.join(':')))).toEqual(new Set(['QUOTA_EXCEEDED:dailyTokenLimit']));
    const b = await books(user.id);
    expect(Number(b.day.tokens)).toBe(fake.ledger.totals().promptTokens + fake.ledger.totals().completionTokens);
  });

  it('applies the monthly cost limit across days: refused calls never reach the provider, spend never above the limit', async () => {
    const user = await createUser(s, admin);
    const id = await start(user);
    fake.reset();
    onTestFinished(() => fake.reset());
    // $0.30 already spent this month (earlier days); the limit is $0.301: a call's worst case (≥ 200 µ$) does not fit.
    await s.sql(
      `INSERT INTO usage_counters (user_id, period, period_start, requests, messages, cost_usd) VALUES ($1, 'MONTH', date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', 3, 3, 0.3)`,
      [user.id],
    );
    await ok(s.url, SET_QUOTA, { input: { userId: user.id, monthlyCostLimitUsd: '0.300100' } }, admin.token);
    const r = await gql(s.url, SEND, { input: { conversationId: id, content: 'Document the module' } }, user.token);
    expect(codes(r)).toEqual(['QUOTA_EXCEEDED']);
    expect(r.errors![0]!.extensions!.limit).toBe('monthlyCostLimitUsd');
    expect(fake.ledger.calls).toHaveLength(0);
    expect(fake.completions).toHaveLength(0);
    // Lifted to $0.31: one call fits and is charged what the provider served.
    await ok(s.url, SET_QUOTA, { input: { userId: user.id, monthlyCostLimitUsd: '0.310000' } }, admin.token);
    await ok(s.url, SEND, { input: { conversationId: id, content: 'Document the module' } }, user.token);
    expect(fake.ledger.calls).toHaveLength(1);
    const [month] = await s.sql<{ cost: string }>(
      `SELECT cost_usd::text AS cost FROM usage_counters WHERE user_id = $1 AND period = 'MONTH'`,
      [user.id],
    );
    expectChargedAsServed(
      formatMicros(toMicros(month!.cost) - toMicros('0.3')),
      fake.ledger.spendMicros(IN_PRICE, OUT_PRICE),
      1,
    );
    expect(toMicros(month!.cost)).toBeLessThanOrEqual(toMicros('0.31'));
  });

  it('falls back to another healthy provider of the same model through the pipeline, charging once, at the provider that served', async () => {
    const user = await createUser(s, admin);
    // Cheapest first: the failing one, then the backup, then the others (on the failing server too).
    const failing = await createProvider('failing-first', fake.baseURL, {
      inputCostPer1k: '0.000100',
      outputCostPer1k: '0.000100',
    });
    const served = await createProvider('backup', backup.baseURL, {
      inputCostPer1k: '0.001000',
      outputCostPer1k: '0.001000',
    });
    const id = await start(user, failing);
    fake.reset();
    backup.reset();
    onTestFinished(() => fake.reset());
    fake.down({ status: 401 });
    const r = await ok(s.url, SEND, { input: { conversationId: id, content: 'Review the change' } }, user.token);
    expect(r.sendMessage.content).toBe('Hello from the fake model.');
    expect(fake.ledger.calls).toHaveLength(0); // it refused: nothing served there
    expect(fake.completions).toHaveLength(1);
    expect(backup.ledger.calls).toHaveLength(1);
    const b = await books(user.id);
    expect(b.records.n).toBe(1);
    const [rec] = await s.sql<{ provider_id: string }>(`SELECT provider_id FROM cost_records WHERE user_id = $1`, [
      user.id,
    ]);
    expect(rec!.provider_id).toBe(served);
    expectChargedAsServed(b.day.cost, backup.ledger.spendMicros('0.001000', '0.001000'), 1);
    expect(b.day).toMatchObject({ requests: 1, reserved_requests: 0, reserved: '0.000000' });
    expect(b.logs.map((l) => l.status)).toEqual(['SUCCESS']);
    // The provider that refused its key is unhealthy at once: the next default call skips it.
    await expect
      .poll(
        async () =>
          (
            await s.sql<{ is_healthy: boolean }>(`SELECT is_healthy FROM provider_health WHERE provider_id = $1`, [
              failing,
            ])
          )[0]?.is_healthy,
      )
      .toBe(false);
    fake.up();
    await s.sql(`UPDATE provider_health SET is_healthy = true, consecutive_failures = 0 WHERE provider_id = $1`, [
      failing,
    ]);
    await s.sql(`UPDATE providers SET active = false WHERE id = ANY($1::uuid[])`, [[failing, served]]);
  });

  it('settles sent calls of a lost instance at their reserved amount (ERROR, "instance lost") and releases only never-sent ones', async () => {
    const user = await createUser(s, admin);
    const ids = await Promise.all([start(user), start(user), start(user)]);
    fake.reset();
    onTestFinished(() => fake.reset());
    fake.setDefault({ delayMs: 2500 });
    const calls = ids.map((id) =>
      gql(s.url, SEND, { input: { conversationId: id, content: 'Plan the migration' } }, user.token),
    );
    await fake.received(3);
    // The three are at the provider. A fourth reservation was made but never sent (its instance died first).
    const periods = await s.sql<{ periods: unknown }>(
      `SELECT periods FROM quota_reservations WHERE user_id = $1 LIMIT 1`,
      [user.id],
    );
    await s.sql(
      `INSERT INTO quota_reservations (id, user_id, tokens, cost_usd, periods, expires_at) VALUES (gen_random_uuid(), $1, 100, 0.5, $2::jsonb, now())`,
      [user.id, JSON.stringify(periods[0]!.periods)],
    );
    await s.sql(
      `UPDATE usage_counters SET reserved_requests = reserved_requests + 1, reserved_tokens = reserved_tokens + 100, reserved_cost_usd = reserved_cost_usd + 0.5 WHERE user_id = $1`,
      [user.id],
    );
    const reserved = await s.sql<{ cost: string }>(
      `SELECT cost_usd::text AS cost FROM quota_reservations WHERE user_id = $1 AND sent_at IS NOT NULL`,
      [user.id],
    );
    expect(reserved).toHaveLength(3);
    // The instance is gone: its reservations expire, and the job (on any instance) runs.
    await s.sql(`UPDATE quota_reservations SET expires_at = now() - interval '1 second' WHERE user_id = $1`, [user.id]);
    const { result } = await s.app.runtime.scheduler.runNow('billing.releaseExpiredReservations');
    expect(result).toEqual({ released: 1, settled: 3 });
    const sum = reserved.reduce((n, r) => n + toMicros(r.cost), 0n);
    let b = await books(user.id);
    expect(b.logs.map((l) => [l.status, l.error_message?.slice(0, 13)])).toEqual([
      ['ERROR', 'instance lost'],
      ['ERROR', 'instance lost'],
      ['ERROR', 'instance lost'],
    ]);
    expect(b.records.n).toBe(3);
    expect(toMicros(b.day.cost)).toBe(sum);
    expect(b.day).toMatchObject({ requests: 3, reserved_requests: 0, reserved: '0.000000' });
    // The provider served all three; what it charged is within what was settled.
    await Promise.all(calls);
    expect(fake.ledger.calls.filter((c) => c.complete)).toHaveLength(3);
    expect(fake.ledger.spendMicros(IN_PRICE, OUT_PRICE)).toBeLessThanOrEqual(sum);
    // Calls that outlived their reservation are not charged a second time.
    b = await books(user.id);
    expect(b.logs).toHaveLength(3);
    expect(toMicros(b.day.cost)).toBe(sum);
  });

  it('keeps settling into the DEFAULT partition when a month partition is missing, and the partition job moves those rows out', async () => {
    const user = await createUser(s, admin);
    const id = await start(user);
    fake.reset();
    const [{ name }] = (await s.sql<{ name: string }>(
      `SELECT 'prompt_logs_' || to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM') AS name`,
    )) as [{ name: string }];
    // A missed partition job: this month's partition is not there.
    await s.sql(`ALTER TABLE prompt_logs DETACH PARTITION ${name}`);
    await s.sql(`ALTER TABLE ${name} RENAME TO ${name}_detached`);
    await ok(s.url, SEND, { input: { conversationId: id, content: 'Summarise the incident' } }, user.token);
    const [row] = await s.sql<{ part: string }>(
      `SELECT tableoid::regclass::text AS part FROM prompt_logs WHERE user_id = $1`,
      [user.id],
    );
    expect(row!.part).toBe('prompt_logs_default');
    expect(fake.ledger.calls).toHaveLength(1);
    await s.app.runtime.scheduler.runNow('ai.promptLogPartitions');
    const [moved] = await s.sql<{ part: string }>(
      `SELECT tableoid::regclass::text AS part FROM prompt_logs WHERE user_id = $1`,
      [user.id],
    );
    expect(moved!.part).toBe(name);
  });
});
