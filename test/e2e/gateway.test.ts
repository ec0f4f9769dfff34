import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';

import { formatMicros, toMicros } from '../../src/modules/billing/money.js';
import { classifyIntent, deviationDelta } from '../../src/shared/intent-classifier.js';
import { ok } from '../support/client.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';
import { createFakeProvider } from '../support/providers.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, setRoomyQuota, type TestUser } from '../support/users.js';

/**
 * Steward as an AI gateway, driven by the official `openai` and `@anthropic-ai/sdk`
 * clients pointed at a Steward started here, in front of a local OpenAI-compatible
 * server that counts what it serves. Steward's books are checked against that count.
 */
let s: TestServer;
let fake: FakeOpenAI;
let admin: TestUser;
let base: string;

const IN_PRICE = '0.002000';
const OUT_PRICE = '0.004000';
const MODEL = 'gpt-4o-mini';

const CREATE_TOKEN = `mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { token apiToken { id } } }`;
const REVOKE_TOKEN = `mutation($id: ID!) { revokeApiToken(id: $id) { id } }`;
const SET_QUOTA = `mutation($input: SetUserQuotaInput!) { setUserQuota(input: $input) { requestsPerHour } }`;

async function apiToken(u: TestUser) {
  const r = await ok(s.url, CREATE_TOKEN, { input: { name: `gw-${Math.random()}` } }, u.token);
  return { token: r.createApiToken.token as string, id: r.createApiToken.apiToken.id as string };
}

const openai = (key: string, extra: Record<string, unknown> = {}) =>
  new OpenAI({ apiKey: key, baseURL: `${base}/v1`, maxRetries: 0, ...extra });
const anthropic = (key: string) => new Anthropic({ apiKey: key, baseURL: base, maxRetries: 0 });

async function books(userId: string) {
  const [day] = await s.sql<{ cost: string; requests: number; reserved_requests: number }>(
    `SELECT cost_usd::text AS cost, requests, reserved_requests FROM usage_counters WHERE user_id = $1 AND period = 'DAY'`,
    [userId],
  );
  const logs = await s.sql<{
    status: string;
    error_message: string | null;
    task_id: string | null;
    project_id: string | null;
    prompt_tokens: number;
    completion_tokens: number;
    cost_usd: string;
  }>(
    `SELECT status, error_message, task_id, project_id, prompt_tokens, completion_tokens, cost_usd::text FROM prompt_logs WHERE user_id = $1 ORDER BY created_at`,
    [userId],
  );
  return { day, logs };
}

function expectChargedAsServed(charged: string, served: bigint, calls: number) {
  const c = toMicros(charged);
  expect(c).toBeGreaterThanOrEqual(served);
  expect(c - served).toBeLessThanOrEqual(BigInt(2 * calls));
}

beforeAll(async () => {
  fake = await startFakeOpenAI();
  s = await startTestServer({ env: { AI_PROVIDER_FALLBACK: 'true' } });
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
  await createFakeProvider(
    s.url,
    {
      name: 'fake-embeddings',
      modelName: 'text-embedding-3-small',
      apiEndpoint: fake.baseURL,
      inputCostPer1k: '0.000020',
      outputCostPer1k: '0',
      maxTokens: 1,
    },
    admin.token,
  );
});
afterAll(async () => {
  await s?.close();
  await fake?.close();
});

describe('the OpenAI-compatible gateway', () => {
  it('lists the models the caller may use', async () => {
    const user = await createUser(s, admin);
    const { token } = await apiToken(user);
    const ids = [];
    for await (const m of openai(token).models.list()) ids.push(m.id);
    expect(ids.sort()).toEqual([MODEL, 'steward-local-1', 'text-embedding-3-small'].sort());
  });

  it('answers a plain completion, charged what the provider served, with the request id and cost in headers', async () => {
    const user = await createUser(s, admin);
    const { token } = await apiToken(user);
    fake.reset();
    fake.script({ reply: 'Plain answer here.' });
    const { data, response } = await openai(token)
      .chat.completions.create({
        model: MODEL,
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Say something' },
        ],
        max_tokens: 20,
      })
      .withResponse();
    expect(data.choices[0]!.message.content).toBe('Plain answer here.');
    expect(data.object).toBe('chat.completion');
    expect(fake.ledger.calls).toHaveLength(1);
    const served = fake.ledger.calls[0]!;
    expect(served.maxTokens).toBe(20); // the caller's cap, not the provider's 200
    expect(data.usage).toMatchObject({
      prompt_tokens: served.promptTokens,
      completion_tokens: served.completionTokens,
    });
    expect(response.headers.get('x-steward-request-id')).toBeTruthy();
    const cost = response.headers.get('x-steward-cost-usd')!;
    const b = await books(user.id);
    expect(b.day!.cost).toBe(cost);
    expectChargedAsServed(cost, fake.ledger.spendMicros(IN_PRICE, OUT_PRICE), 1);
    expect(b.logs.map((l) => l.status)).toEqual(['SUCCESS']);
    // The provider got the caller's messages as sent, with the platform key, not the caller's.
    expect(fake.completions[0]!.authorization).toBe('Bearer sk-platform-key-9876');
    expect(fake.completions[0]!.body.messages).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Say something' },
    ]);
  });

  it('streams SSE chunks ending in [DONE], with the usage chunk when asked', async () => {
    const user = await createUser(s, admin);
    const { token } = await apiToken(user);
    fake.reset();
    fake.script({ chunks: ['one ', 'two ', 'three'] });
    const stream = await openai(token).chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Count to three' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const texts: string[] = [];
    let usage: OpenAI.CompletionUsage | null | undefined;
    let finish: string | null | undefined;
    for await (const c of stream) {
      const d = c.choices[0]?.delta?.content;
      if (d) texts.push(d);
      if (c.choices[0]?.finish_reason) finish = c.choices[0].finish_reason;
      if (c.usage) usage = c.usage;
    }
    expect(texts).toEqual(['one ', 'two ', 'three']);
    expect(finish).toBe('stop');
    const served = fake.ledger.calls[0]!;
    expect(usage).toMatchObject({ prompt_tokens: served.promptTokens, completion_tokens: served.completionTokens });
    // Steward always asked the provider for usage.
    expect(fake.completions[0]!.body.stream_options).toEqual({ include_usage: true });

    // Raw: the wire format itself, and no usage chunk when not asked.
    fake.script({ chunks: ['a ', 'b'] });
    const raw = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], stream: true }),
    });
    expect(raw.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await raw.text();
    const events = text.split('\n\n').filter((e) => e.startsWith('data: '));
    expect(events.at(-1)).toBe('data: [DONE]');
    expect(events.some((e) => e.includes('"usage":{'))).toBe(false);
    const b = await books(user.id);
    expectChargedAsServed(b.day!.cost, fake.ledger.spendMicros(IN_PRICE, OUT_PRICE), 2);
  });

  it('passes tools and tool_choice through and returns the tool calls, plain and streamed', async () => {
    const user = await createUser(s, admin);
    const { token } = await apiToken(user);
    fake.reset();
    const tools: OpenAI.Chat.ChatCompletionTool[] = [
      {
        type: 'function',
        function: {
          name: 'get_weather',
          description: 'Weather of a city',
          parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        },
      },
    ];
    fake.script(
      { toolCalls: [{ name: 'get_weather', arguments: '{"city":"Oslo"}' }] },
      { toolCalls: [{ name: 'get_weather', arguments: '{"city":"Bergen"}' }] },
    );
    const plain = await openai(token).chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Weather in Oslo?' }],
      tools,
      tool_choice: 'auto',
    });
    expect(plain.choices[0]!.finish_reason).toBe('tool_calls');
    expect(plain.choices[0]!.message.tool_calls![0]).toMatchObject({
      type: 'function',
      function: { name: 'get_weather', arguments: '{"city":"Oslo"}' },
    });
    expect(fake.completions[0]!.body.tools).toEqual(tools);
    expect(fake.completions[0]!.body.tool_choice).toBe('auto');

    const stream = openai(token).chat.completions.stream({
      model: MODEL,
      messages: [{ role: 'user', content: 'Weather in Bergen?' }],
      tools,
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
    });
    const final = await stream.finalChatCompletion();
    expect(final.choices[0]!.message.tool_calls![0]).toMatchObject({
      function: { name: 'get_weather', arguments: '{"city":"Bergen"}' },
    });
    expect(fake.completions[1]!.body.tool_choice).toEqual({ type: 'function', function: { name: 'get_weather' } });

    // A tool result goes back to the provider as the caller wrote it.
    fake.script({ reply: 'It is sunny in Oslo.' });
    const call = plain.choices[0]!.message.tool_calls![0]!;
    const answer = await openai(token).chat.completions.create({
      model: MODEL,
      tools,
      messages: [
        { role: 'user', content: 'Weather in Oslo?' },
        plain.choices[0]!.message,
        { role: 'tool', tool_call_id: call.id, content: '{"sky":"sunny"}' },
      ],
    });
    expect(answer.choices[0]!.message.content).toBe('It is sunny in Oslo.');
    expect(fake.completions[2]!.body.messages.at(-1)).toEqual({
      role: 'tool',
      tool_call_id: call.id,
      content: '{"sky":"sunny"}',
    });
    const b = await books(user.id);
    expectChargedAsServed(b.day!.cost, fake.ledger.spendMicros(IN_PRICE, OUT_PRICE), 3);
  });

  it("refuses bad and revoked keys with 401 in OpenAI's shape, and never reaches the provider", async () => {
    const user = await createUser(s, admin);
    const { token, id } = await apiToken(user);
    fake.reset();
    const err = await openai('stw_not-a-real-token')
      .chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(err.status).toBe(401);
    expect(err.error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_api_key' });
    // An access token (a session's JWT) is not an API key.
    const jwt = await openai(user.token)
      .models.list()
      .catch((e) => e);
    expect(jwt.status).toBe(401);
    await openai(token).chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] });
    await ok(s.url, REVOKE_TOKEN, { id }, user.token);
    const revoked = await openai(token)
      .chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e) => e);
    expect(revoked.status).toBe(401);
    expect(fake.ledger.calls).toHaveLength(1);
  });

  it('answers 404 model_not_found for an unknown model, 400 for an invalid request, 429 with Retry-After at the budget', async () => {
    const user = await createUser(s, admin);
    const { token } = await apiToken(user);
    fake.reset();
    const unknown = await openai(token)
      .chat.completions.create({ model: 'gpt-nope', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e) => e);
    expect(unknown.status).toBe(404);
    expect(unknown.error).toMatchObject({ code: 'model_not_found' });
    const bad = await openai(token)
      .chat.completions.create({ model: MODEL, messages: [] })
      .catch((e) => e);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    expect(bad.error.param).toBe('messages');
    const badJson = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{"model":',
    });
    expect(badJson.status).toBe(400);
    expect(((await badJson.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');

    await ok(s.url, SET_QUOTA, { input: { userId: user.id, dailyCostLimitUsd: '0.000001' } }, admin.token);
    const broke = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(broke.status).toBe(429);
    expect(Number(broke.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await broke.json()) as { error: unknown }).error).toMatchObject({
      type: 'insufficient_quota',
      code: 'insufficient_quota',
    });
    await ok(s.url, SET_QUOTA, { input: { userId: user.id, requestsPerHour: 1 } }, admin.token);
    await openai(token).chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] });
    const limited = await openai(token)
      .chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e) => e);
    expect(limited).toBeInstanceOf(OpenAI.RateLimitError);
    expect(limited.error).toMatchObject({ code: 'rate_limit_exceeded' });
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(fake.ledger.calls).toHaveLength(1);
  });

  it("answers 502 without the provider's own error text, and logs the failure", async () => {
    const user = await createUser(s, admin);
    const { token } = await apiToken(user);
    fake.reset();
    fake.script({ status: 500, message: 'internal detail: db password is hunter2' });
    const err = await openai(token)
      .chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e) => e);
    expect(err.status).toBe(502);
    expect(JSON.stringify(err.error)).not.toMatch(/hunter2|internal detail/);
    const b = await books(user.id);
    expect(b.logs.map((l) => l.status)).toEqual(['ERROR']);
    expect(b.day?.cost ?? '0.000000').toBe('0.000000');
    expect(fake.ledger.calls).toHaveLength(0);
  });

  it('charges a client that leaves mid-stream for what was streamed, and logs it; one that leaves before any token is released', async () => {
    const user = await createUser(s, admin);
    const { token } = await apiToken(user);
    fake.reset();
    fake.script({ chunks: ['first ', 'second ', 'third ', 'fourth ', 'fifth'], chunkDelayMs: 300 });
    const controller = new AbortController();
    const stream = await openai(token).chat.completions.create(
      { model: MODEL, messages: [{ role: 'user', content: 'Tell me a long story' }], stream: true },
      { signal: controller.signal },
    );
    const got: string[] = [];
    await (async () => {
      for await (const c of stream) {
        const d = c.choices[0]?.delta?.content;
        if (d) got.push(d);
        if (got.length === 2) controller.abort();
      }
    })().catch(() => {});
    expect(got).toEqual(['first ', 'second ']);
    await expect.poll(async () => (await books(user.id)).logs.length, { timeout: 5000 }).toBe(1);
    const served = fake.ledger.calls[0]!;
    expect(served.complete).toBe(false);
    expect(served.text).toBe('first second ');
    const b = await books(user.id);
    expect(b.logs[0]).toMatchObject({
      status: 'ERROR',
      prompt_tokens: served.promptTokens,
      completion_tokens: served.completionTokens,
    });
    expect(b.logs[0]!.error_message).toMatch(/aborted by the caller; charged for the \d+ tokens streamed/);
    expectChargedAsServed(b.day!.cost, fake.ledger.spendMicros(IN_PRICE, OUT_PRICE), 1);
    expect(b.day).toMatchObject({ requests: 1, reserved_requests: 0 });

    // Gone before the first token: nothing charged, the reservation given back, the call logged.
    fake.reset();
    fake.script({ reply: 'late', delayMs: 1000 });
    const early = new AbortController();
    const pending = openai(token)
      .chat.completions.create(
        { model: MODEL, messages: [{ role: 'user', content: 'Too slow' }], stream: true },
        { signal: early.signal },
      )
      .catch(() => null);
    await fake.received(1);
    early.abort();
    await pending;
    await expect.poll(async () => (await books(user.id)).logs.length, { timeout: 5000 }).toBe(2);
    const after = await books(user.id);
    expect(after.logs[1]).toMatchObject({ status: 'ERROR', error_message: 'aborted by the caller' });
    expect(after.day).toMatchObject({ cost: b.day!.cost, requests: 1, reserved_requests: 0 });
  });

  it('meters embeddings the same way', async () => {
    const user = await createUser(s, admin);
    const { token } = await apiToken(user);
    fake.reset();
    const r = await openai(token).embeddings.create({
      model: 'text-embedding-3-small',
      input: ['alpha beta', 'gamma'],
    });
    expect(r.data).toHaveLength(2);
    expect(r.usage.prompt_tokens).toBe(fake.ledger.embeddings[0]!.promptTokens);
    const b = await books(user.id);
    expect(b.logs.map((l) => [l.status, l.prompt_tokens, l.completion_tokens])).toEqual([
      ['SUCCESS', r.usage.prompt_tokens, 0],
    ]);
    expect(toMicros(b.day!.cost)).toBe(BigInt(Math.ceil((r.usage.prompt_tokens * 20) / 1000)));
  });
});

describe('exact reservations at the budget edge', () => {
  it("admits exactly the affordable calls of 50 concurrent ones, reserving by the model's tokenizer, never over-spending", async () => {
    const user = await createUser(s, admin);
    const { token } = await apiToken(user);
    const client = openai(token);
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
      { role: 'system', content: 'You are a careful reviewer of TypeScript code.' },
      { role: 'user', content: 'Review this function: export const add = (a: number, b: number) => a + b;' },
    ];
    fake.reset();
    onTestFinished(() => fake.reset());
    await setRoomyQuota(s, admin, user.id);
    // What one call reserves: read while a first call is at the provider.
    fake.script({ delayMs: 300 });
    const probe = client.chat.completions.create({ model: MODEL, messages, max_tokens: 20 });
    await fake.received(1);
    const [held] = await s.sql<{ tokens: number; cost: string }>(
      `SELECT tokens, cost_usd::text AS cost FROM quota_reservations WHERE user_id = $1`,
      [user.id],
    );
    await probe;
    // The prompt as the provider counts it, plus 1 token of margin per message, plus max_tokens: far below the byte bound.
    const served = fake.ledger.calls[0]!;
    expect(held!.tokens).toBe(served.promptTokens + messages.length + 20);
    const bytes = messages.reduce((n, m) => n + Buffer.byteLength(String(m.content)) + 4, 3) + 20;
    expect(held!.tokens).toBeLessThan(bytes / 2);

    const worst = toMicros(held!.cost);
    const [day] = await s.sql<{ cost: string }>(
      `SELECT cost_usd::text AS cost FROM usage_counters WHERE user_id = $1 AND period = 'DAY'`,
      [user.id],
    );
    const spentBefore = toMicros(day!.cost);
    const limit = spentBefore + worst * 7n + worst / 2n; // room for 7.5 calls: exactly 7 fit
    await setRoomyQuota(s, admin, user.id, { dailyCostLimitUsd: formatMicros(limit) });
    // Every answer uses exactly its reservation, so a settled call frees nothing, however the 50 interleave.
    fake.setDefault({ delayMs: 100, usage: { prompt_tokens: held!.tokens - 20, completion_tokens: 20 } });
    const results = await Promise.all(
      Array.from({ length: 50 }, () =>
        client.chat.completions.create({ model: MODEL, messages, max_tokens: 20 }).then(
          () => 'ok',
          (e) => `${e.status}:${e.error?.code}`,
        ),
      ),
    );
    const tally = results.reduce<Record<string, number>>((t, r) => ((t[r] = (t[r] ?? 0) + 1), t), {});
    expect(tally).toEqual({ ok: 7, '429:insufficient_quota': 43 });
    expect(fake.ledger.calls).toHaveLength(1 + 7);
    const after = toMicros(
      (
        await s.sql<{ cost: string }>(
          `SELECT cost_usd::text AS cost FROM usage_counters WHERE user_id = $1 AND period = 'DAY'`,
          [user.id],
        )
      )[0]!.cost,
    );
    expect(after).toBeLessThanOrEqual(limit);
    // The provider's own count of the spend (all 8 calls) is within the limit too.
    expect(fake.ledger.spendMicros(IN_PRICE, OUT_PRICE)).toBeLessThanOrEqual(limit);
    expectChargedAsServed(formatMicros(after), fake.ledger.spendMicros(IN_PRICE, OUT_PRICE), 8);
  });
});

describe('governance through X-Steward-Task', () => {
  it("classifies against the task's allowed intents, attributes the call to the task and its project, and blocks automatically", async () => {
    const server = await startTestServer({ env: { DEVIATION_BLOCK_THRESHOLD: '10' } });
    onTestFinished(() => server.close());
    const boss = await firstAdmin(server);
    await createFakeProvider(
      server.url,
      {
        name: 'fake-openai',
        modelName: MODEL,
        apiEndpoint: fake.baseURL,
        inputCostPer1k: IN_PRICE,
        outputCostPer1k: OUT_PRICE,
        maxTokens: 50,
      },
      boss.token,
    );
    const user = await createUser(server, boss);
    const outsider = await createUser(server, boss);
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
    const token = (await ok(server.url, CREATE_TOKEN, { input: { name: 'gw' } }, user.token)).createApiToken
      .token as string;
    const other = (await ok(server.url, CREATE_TOKEN, { input: { name: 'gw' } }, outsider.token)).createApiToken
      .token as string;
    const client = new OpenAI({
      apiKey: token,
      baseURL: `${server.url.replace(/\/graphql$/, '')}/v1`,
      maxRetries: 0,
      defaultHeaders: { 'X-Steward-Task': task },
    });
    fake.reset();

    // A task the caller does not work on cannot govern its calls.
    const foreign = await new OpenAI({
      apiKey: other,
      baseURL: `${server.url.replace(/\/graphql$/, '')}/v1`,
      maxRetries: 0,
      defaultHeaders: { 'X-Steward-Task': task },
    }).chat.completions
      .create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e) => e);
    expect(foreign.status).toBe(404);

    await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Implement the endpoint and write a unit test' }],
    });
    await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Write a poem and a song about my vacation' }],
    });
    const blocked = await client.chat.completions
      .create({
        model: MODEL,
        messages: [{ role: 'user', content: 'Another poem, a story and a joke about the holiday' }],
      })
      .catch((e) => e);
    expect(blocked).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(fake.ledger.calls).toHaveLength(2);

    const logs = await server.sql<{ status: string; intent: string; task_id: string; project_id: string }>(
      `SELECT status, intent, task_id, project_id FROM prompt_logs WHERE user_id = $1 ORDER BY created_at`,
      [user.id],
    );
    expect(logs.map((l) => l.status)).toEqual(['SUCCESS', 'SUCCESS', 'BLOCKED']);
    expect(logs[1]!.intent).toBe('creative_writing');
    expect(logs.every((l) => l.task_id === task && l.project_id === project)).toBe(true);
    const [u] = await server.sql<{ is_blocked: boolean }>(`SELECT is_blocked FROM users WHERE id = $1`, [user.id]);
    expect(u!.is_blocked).toBe(true);
    // The blocked user's key stops working.
    const after = await client.models.list().catch((e) => e);
    expect(after.status).toBe(401);
  });

  it('decides concurrent off-task calls at the block threshold as if one by one: exactly those below it are served', async () => {
    const user = await createUser(s, admin);
    const { token } = await apiToken(user);
    const project = (await ok(s.url, `mutation { createProject(input: { name: "Rushed" }) { id } }`, {}, user.token))
      .createProject.id;
    const task = (
      await ok(
        s.url,
        `mutation($input: CreateTaskInput!) { createTask(input: $input) { id } }`,
        { input: { projectId: project, title: 'Build the API', allowedIntents: ['coding'] } },
        user.token,
      )
    ).createTask.id;
    const prompt = 'Write a poem and a song about my vacation';
    const delta = deviationDelta(['coding'], classifyIntent(prompt));
    // The default threshold is 50: the calls whose score stays below it are served, the next blocks the user.
    const below = Math.ceil(50 / delta) - 1;
    fake.reset();
    const results = await Promise.all(
      Array.from({ length: below + 5 }, () =>
        openai(token, { defaultHeaders: { 'X-Steward-Task': task } })
          .chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: prompt }] })
          .then(
            () => 200,
            (e: { status: number }) => e.status,
          ),
      ),
    );
    expect(fake.ledger.calls).toHaveLength(below);
    expect(results.filter((r) => r === 200)).toHaveLength(below);
    expect(results.filter((r) => r !== 200).every((r) => r === 403 || r === 401)).toBe(true);
    // Each served call's score follows the one before, as if the calls had come one after another.
    const logs = await s.sql<{ score_before: string; score_after: string }>(
      `SELECT score_before, score_after FROM prompt_logs WHERE user_id = $1 AND status = 'SUCCESS' ORDER BY score_before::numeric`,
      [user.id],
    );
    expect(logs.map((l) => [Number(l.score_before), Number(l.score_after)])).toEqual(
      Array.from({ length: below }, (_, i) => [
        Math.round(i * delta * 100) / 100,
        Math.round((i + 1) * delta * 100) / 100,
      ]),
    );
    const [u] = await s.sql<{ is_blocked: boolean }>(`SELECT is_blocked FROM users WHERE id = $1`, [user.id]);
    expect(u!.is_blocked).toBe(true);
  });
});

describe('the Anthropic-compatible gateway', () => {
  it('answers Messages API calls, plain and streamed, from an OpenAI-compatible provider', async () => {
    const user = await createUser(s, admin);
    const { token } = await apiToken(user);
    fake.reset();
    fake.script({ reply: 'Bonjour le monde' }, { chunks: ['Hel', 'lo ', 'there'] });
    const plain = await anthropic(token).messages.create({
      model: MODEL,
      max_tokens: 30,
      system: 'Be brief.',
      messages: [{ role: 'user', content: 'Say hello in French' }],
    });
    expect(plain.content).toEqual([{ type: 'text', text: 'Bonjour le monde' }]);
    expect(plain.stop_reason).toBe('end_turn');
    const first = fake.ledger.calls[0]!;
    expect(plain.usage).toMatchObject({ input_tokens: first.promptTokens, output_tokens: first.completionTokens });
    expect(fake.completions[0]!.body.messages).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Say hello in French' },
    ]);
    expect(fake.completions[0]!.body.max_tokens).toBe(30);

    const deltas: string[] = [];
    const stream = anthropic(token).messages.stream({
      model: MODEL,
      max_tokens: 30,
      messages: [{ role: 'user', content: 'Say hello' }],
    });
    stream.on('text', (t) => deltas.push(t));
    const final = await stream.finalMessage();
    expect(deltas).toEqual(['Hel', 'lo ', 'there']);
    expect(final.content).toEqual([{ type: 'text', text: 'Hello there' }]);
    const second = fake.ledger.calls[1]!;
    expect(final.usage).toMatchObject({ input_tokens: second.promptTokens, output_tokens: second.completionTokens });
    const b = await books(user.id);
    expectChargedAsServed(b.day!.cost, fake.ledger.spendMicros(IN_PRICE, OUT_PRICE), 2);
  });

  it("translates tools both ways and answers errors in Anthropic's shape", async () => {
    const user = await createUser(s, admin);
    const { token } = await apiToken(user);
    fake.reset();
    fake.script({ toolCalls: [{ name: 'get_weather', arguments: '{"city":"Oslo"}' }] });
    const r = await anthropic(token).messages.create({
      model: MODEL,
      max_tokens: 30,
      tools: [
        {
          name: 'get_weather',
          description: 'Weather',
          input_schema: { type: 'object', properties: { city: { type: 'string' } } },
        },
      ],
      messages: [{ role: 'user', content: 'Weather in Oslo?' }],
    });
    expect(r.stop_reason).toBe('tool_use');
    expect(r.content[0]).toMatchObject({ type: 'tool_use', name: 'get_weather', input: { city: 'Oslo' } });
    expect(fake.completions[0]!.body.tools[0]).toMatchObject({
      type: 'function',
      function: { name: 'get_weather', parameters: { type: 'object' } },
    });

    const bad = await anthropic('stw_bad')
      .messages.create({ model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e) => e);
    expect(bad).toBeInstanceOf(Anthropic.AuthenticationError);
    expect(bad.error).toMatchObject({ type: 'error', error: { type: 'authentication_error' } });
    const missing = await anthropic(token)
      .messages.create({ model: 'claude-nope', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e) => e);
    expect(missing).toBeInstanceOf(Anthropic.NotFoundError);
  });
});
