import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { ok } from '../support/client.js';
import { startFakeAnthropic, type FakeAnthropic } from '../support/fake-anthropic.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, setRoomyQuota, type TestUser } from '../support/users.js';

/**
 * Tool calling across wire formats: an OpenAI client's tools reach an Anthropic provider
 * as Anthropic tool definitions (checked by a strict fake Anthropic API) and its tool_use
 * blocks come back as OpenAI tool_calls, plain and streamed; an Anthropic client's tools
 * reach an OpenAI provider as functions and come back as tool_use blocks, plain and streamed.
 */
let s: TestServer;
let claude: FakeAnthropic;
let gpt: FakeOpenAI;
let admin: TestUser;
let token: string;
let userId: string;
let base: string;

const CLAUDE = 'claude-fake-1';
const GPT = 'gpt-4o-mini';
const PRICE = { in: '0.003000', out: '0.015000' };

const WEATHER: OpenAI.Chat.ChatCompletionTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};
const ANTHROPIC_WEATHER: Anthropic.Tool = {
  name: 'get_weather',
  description: 'The weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

const openai = () => new OpenAI({ apiKey: token, baseURL: `${base}/v1`, maxRetries: 0 });
const anthropic = () => new Anthropic({ apiKey: token, baseURL: base, maxRetries: 0 });

/** What the prompt logs charged, against what the fake Anthropic API reported serving. */
async function expectChargedAsServedByClaude() {
  const [row] = await s.sql<{ n: number; prompt: number; completion: number }>(
    `SELECT count(*)::int AS n, coalesce(sum(prompt_tokens), 0)::int AS prompt, coalesce(sum(completion_tokens), 0)::int AS completion
       FROM prompt_logs WHERE user_id = $1 AND status = 'SUCCESS' AND model = $2`,
    [userId, CLAUDE],
  );
  const served = [...earlier, ...claude.served];
  expect(row).toEqual({
    n: served.length,
    prompt: served.reduce((t, c) => t + c.inputTokens, 0),
    completion: served.reduce((t, c) => t + c.outputTokens, 0),
  });
}

beforeAll(async () => {
  claude = await startFakeAnthropic();
  gpt = await startFakeOpenAI();
  s = await startTestServer();
  base = s.url.replace(/\/graphql$/, '');
  admin = await firstAdmin(s);
  const provider = `mutation($input: CreateProviderInput!) { createProvider(input: $input) { id } }`;
  const common = { inputCostPer1k: PRICE.in, outputCostPer1k: PRICE.out, maxTokens: 500, timeoutSeconds: 5 };
  await ok(
    s.url,
    provider,
    {
      input: {
        name: 'fake-claude',
        providerType: 'ANTHROPIC',
        modelName: CLAUDE,
        apiEndpoint: claude.url,
        apiKey: 'sk-ant-fake-1234',
        ...common,
      },
    },
    admin.token,
  );
  await ok(
    s.url,
    provider,
    {
      input: {
        name: 'fake-gpt',
        providerType: 'OPENAI',
        modelName: GPT,
        apiEndpoint: gpt.baseURL,
        apiKey: 'sk-fake-5678',
        ...common,
      },
    },
    admin.token,
  );
  const u = await createUser(s, admin);
  userId = u.id;
  await setRoomyQuota(s, admin, u.id);
  token = (await ok(s.url, `mutation { createApiToken(input: { name: "tools" }) { token } }`, {}, u.token))
    .createApiToken.token;
});
afterAll(async () => {
  await s?.close();
  await claude?.close();
  await gpt?.close();
});
/** What the fake Anthropic API served in earlier tests (its ledger is reset for each). */
const earlier: FakeAnthropic['served'] = [];
beforeEach(() => {
  earlier.push(...claude.served);
  claude.reset();
  gpt.reset();
});

describe('OpenAI tools served by an Anthropic provider', () => {
  it('sends Anthropic tools and tool_choice, and answers tool_use as tool_calls; the tool result goes back as tool_result', async () => {
    claude.script({ toolUses: [{ name: 'get_weather', input: { city: 'Oslo' } }] }, { text: 'It is sunny in Oslo.' });
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
      { role: 'system', content: 'Use tools.' },
      { role: 'user', content: 'Weather in Oslo?' },
    ];
    const first = await openai().chat.completions.create({
      model: CLAUDE,
      messages,
      tools: [WEATHER],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      max_tokens: 100,
    });
    expect(claude.refused).toEqual([]);
    const sent = claude.requests[0];
    expect(sent.tools).toEqual([ANTHROPIC_WEATHER]);
    expect(sent.tool_choice).toEqual({ type: 'tool', name: 'get_weather' });
    expect(sent.system).toBe('Use tools.');
    expect(sent.messages).toEqual([{ role: 'user', content: [{ type: 'text', text: 'Weather in Oslo?' }] }]);

    const choice = first.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    expect(choice.message.tool_calls).toEqual([
      { id: 'toolu_1_0', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } },
    ]);
    expect(first.usage).toMatchObject({
      prompt_tokens: claude.served[0]!.inputTokens,
      completion_tokens: claude.served[0]!.outputTokens,
    });

    // The next turn: the assistant's call and the tool's result, as Anthropic wants them.
    const second = await openai().chat.completions.create({
      model: CLAUDE,
      messages: [
        ...messages,
        choice.message as OpenAI.Chat.ChatCompletionMessageParam,
        { role: 'tool', tool_call_id: 'toolu_1_0', content: '{"sky":"clear","celsius":21}' },
      ],
      tools: [WEATHER],
      tool_choice: 'auto',
      max_tokens: 100,
    });
    expect(claude.refused).toEqual([]);
    expect(claude.requests[1].tool_choice).toEqual({ type: 'auto' });
    expect(claude.requests[1].messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'Weather in Oslo?' }] },
      {
        role: 'assistant',
        content: [{ type: 'tool_use', id: 'toolu_1_0', name: 'get_weather', input: { city: 'Oslo' } }],
      },
      {
        role: 'user',
        content: [{ type: 'tool_result', tool_use_id: 'toolu_1_0', content: '{"sky":"clear","celsius":21}' }],
      },
    ]);
    expect(second.choices[0]!.message.content).toBe('It is sunny in Oslo.');
    expect(second.choices[0]!.finish_reason).toBe('stop');
    await expectChargedAsServedByClaude();
  });

  it('streams the tool call as OpenAI tool_call fragments, with the usage chunk', async () => {
    claude.script({
      text: 'Let me check. ',
      toolUses: [
        { name: 'get_weather', input: { city: 'Bergen' } },
        { name: 'get_weather', input: { city: 'Tromsø' } },
      ],
    });
    const stream = openai().chat.completions.stream({
      model: CLAUDE,
      messages: [{ role: 'user', content: 'Weather in Bergen and Tromsø?' }],
      tools: [WEATHER],
      tool_choice: 'required',
      max_tokens: 100,
      stream: true,
      stream_options: { include_usage: true },
    });
    const fragments: unknown[] = [];
    stream.on('chunk', (c) => {
      for (const t of c.choices[0]?.delta?.tool_calls ?? []) fragments.push(t);
    });
    const final = await stream.finalChatCompletion();
    expect(claude.refused).toEqual([]);
    expect(claude.requests[0].tool_choice).toEqual({ type: 'any' });
    expect(claude.requests[0].stream).toBe(true);
    const msg = final.choices[0]!.message;
    expect(msg.content).toBe('Let me check. ');
    expect(msg.tool_calls).toEqual([
      { id: 'toolu_1_0', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Bergen"}' } },
      { id: 'toolu_1_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Tromsø"}' } },
    ]);
    expect(final.choices[0]!.finish_reason).toBe('tool_calls');
    // Streamed in pieces (the arguments as they came), not sent whole at the end.
    expect(fragments.length).toBeGreaterThan(2);
    expect(final.usage).toMatchObject({
      prompt_tokens: claude.served[0]!.inputTokens,
      completion_tokens: claude.served[0]!.outputTokens,
    });
    await expectChargedAsServedByClaude();
  });

  it('refuses a tool Anthropic cannot take with 400, before anything is sent', async () => {
    const bad = await openai()
      .chat.completions.create({
        model: CLAUDE,
        messages: [{ role: 'user', content: 'hi' }],
        tools: [{ type: 'custom', custom: { name: 'grammar' } } as unknown as OpenAI.Chat.ChatCompletionTool],
      })
      .catch((e) => e);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    expect(claude.requests).toHaveLength(0);
  });
});

describe('Anthropic tools, through /v1/messages', () => {
  it('reach an Anthropic provider as the Anthropic definitions they were', async () => {
    claude.script({ toolUses: [{ name: 'get_weather', input: { city: 'Paris' } }] });
    const r = await anthropic().messages.create({
      model: CLAUDE,
      max_tokens: 100,
      tools: [ANTHROPIC_WEATHER],
      tool_choice: { type: 'any' },
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
    });
    expect(claude.refused).toEqual([]);
    expect(claude.requests[0].tools).toEqual([ANTHROPIC_WEATHER]);
    expect(claude.requests[0].tool_choice).toEqual({ type: 'any' });
    expect(r.stop_reason).toBe('tool_use');
    expect(r.content).toEqual([{ type: 'tool_use', id: 'toolu_1_0', name: 'get_weather', input: { city: 'Paris' } }]);
    await expectChargedAsServedByClaude();
  });

  it('stream back from an Anthropic provider as tool_use blocks, and the tool result goes back as tool_result', async () => {
    claude.script(
      { text: 'Checking. ', toolUses: [{ name: 'get_weather', input: { city: 'Lyon' } }] },
      { text: 'Mild.' },
    );
    const final = await anthropic()
      .messages.stream({
        model: CLAUDE,
        max_tokens: 100,
        tools: [ANTHROPIC_WEATHER],
        messages: [{ role: 'user', content: 'Weather in Lyon?' }],
      })
      .finalMessage();
    expect(final.stop_reason).toBe('tool_use');
    expect(final.content).toEqual([
      { type: 'text', text: 'Checking. ' },
      expect.objectContaining({ type: 'tool_use', id: 'toolu_1_0', name: 'get_weather', input: { city: 'Lyon' } }),
    ]);
    const answer = await anthropic().messages.create({
      model: CLAUDE,
      max_tokens: 100,
      tools: [ANTHROPIC_WEATHER],
      messages: [
        { role: 'user', content: 'Weather in Lyon?' },
        { role: 'assistant', content: final.content as Anthropic.ContentBlockParam[] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1_0', content: '14 C, cloudy' }] },
      ],
    });
    expect(claude.refused).toEqual([]);
    expect(claude.requests[1].messages.slice(1)).toEqual([
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Checking. ' },
          { type: 'tool_use', id: 'toolu_1_0', name: 'get_weather', input: { city: 'Lyon' } },
        ],
      },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1_0', content: '14 C, cloudy' }] },
    ]);
    expect(answer.content).toEqual([{ type: 'text', text: 'Mild.' }]);
    await expectChargedAsServedByClaude();
  });

  it('reach an OpenAI provider as functions and come back as tool_use blocks, streamed', async () => {
    gpt.script({ toolCalls: [{ name: 'get_weather', arguments: '{"city":"Rome"}' }] });
    const stream = anthropic().messages.stream({
      model: GPT,
      max_tokens: 100,
      tools: [ANTHROPIC_WEATHER],
      tool_choice: { type: 'tool', name: 'get_weather' },
      messages: [{ role: 'user', content: 'Weather in Rome?' }],
    });
    const final = await stream.finalMessage();
    const sent = gpt.completions[0]!.body;
    expect(sent.tools).toEqual([WEATHER]);
    expect(sent.tool_choice).toEqual({ type: 'function', function: { name: 'get_weather' } });
    expect(final.stop_reason).toBe('tool_use');
    expect(final.content).toEqual([
      expect.objectContaining({ type: 'tool_use', name: 'get_weather', input: { city: 'Rome' } }),
    ]);
    expect(final.usage).toMatchObject({
      input_tokens: gpt.ledger.calls[0]!.promptTokens,
      output_tokens: gpt.ledger.calls[0]!.completionTokens,
    });
  });
});
