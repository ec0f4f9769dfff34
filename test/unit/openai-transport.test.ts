import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { LlmCallError } from '../../src/modules/billing/clients/errors.js';
import { countPromptTokens, countTokens } from '../../src/modules/billing/clients/local.js';
import { openAiClient } from '../../src/modules/billing/clients/openai.js';
import type { ChatDelta, ChatRequest } from '../../src/modules/billing/llm.js';

/**
 * The OpenAI-compatible client over its HTTP transport, against a real local HTTP server
 * (no mocks): what goes on the wire, and how every failure maps to an LlmCallError kind.
 */

interface Seen {
  method: string;
  url: string;
  authorization: string | undefined;
  body: any;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: any) => void;

const KEY = 'sk-transport-test-0123456789abcdef';
const seen: Seen[] = [];
let handler: Handler;
let baseURL: string;
const connections = new Set<unknown>();
const server = createServer((req, res) => {
  let raw = '';
  req.on('data', (c: Buffer) => (raw += c.toString()));
  req.on('end', () => {
    const body = raw ? JSON.parse(raw) : null;
    seen.push({ method: req.method!, url: req.url!, authorization: req.headers.authorization, body });
    handler(req, res, body);
  });
});
server.on('connection', (socket) => connections.add(socket));

const sse = (res: ServerResponse, events: unknown[], done = true) => {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  for (const e of events) res.write(`data: ${JSON.stringify(e)}\n\n`);
  if (done) res.end('data: [DONE]\n\n');
};
const text = (content: string) => ({ model: 'm-served', choices: [{ index: 0, delta: { content } }] });
const usage = { model: 'm-served', choices: [], usage: { prompt_tokens: 7, completion_tokens: 2 } };
const reply: Handler = (_req, res) =>
  sse(res, [text('Hi '), text('there'), { choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }, usage]);
const chat = (over: Partial<ChatRequest> = {}): ChatRequest => ({
  model: 'm',
  messages: [{ role: 'user', content: 'Hello' }],
  maxTokens: 32,
  timeoutMs: 5000,
  ...over,
});

beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  seen.length = 0;
  handler = reply;
});

describe('openAiClient over the HTTP transport', () => {
  it('streams a chat over kept-alive connections, with the key as a Bearer header', async () => {
    const client = openAiClient({ name: 'p', apiKey: KEY, baseURL });
    const deltas: string[] = [];
    const before = connections.size;
    const r = await client.chat(chat(), (d) => deltas.push(d));
    expect(r).toEqual({
      content: 'Hi there',
      promptTokens: 7,
      completionTokens: 2,
      model: 'm-served',
      finishReason: 'stop',
      usageReported: true,
    });
    expect(deltas).toEqual(['Hi ', 'there']);
    // Kept alive: more calls, no more connections (undici frees a connection for the next
    // call one event-loop turn after the answer ended, so two may take turns).
    for (let i = 0; i < 5; i++) await client.chat(chat());
    expect(connections.size - before).toBeLessThanOrEqual(2);
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/v1/chat/completions', authorization: `Bearer ${KEY}` });
    expect(seen[0]!.body).toEqual({
      model: 'm',
      messages: [{ role: 'user', content: 'Hello' }],
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 32,
    });
  });

  it('sends no Authorization header at all to a keyless endpoint (chat, embeddings, probe)', async () => {
    const client = openAiClient({ name: 'p', apiKey: null, baseURL: `${baseURL}/` });
    await client.chat(chat());
    handler = (_req, res) =>
      res.end(JSON.stringify({ data: [{ index: 0, embedding: [0.5] }], model: 'e', usage: { prompt_tokens: 3 } }));
    expect(await client.embed!({ model: 'e', input: 'x', timeoutMs: 5000 })).toEqual({
      data: [{ index: 0, embedding: [0.5] }],
      model: 'e',
      promptTokens: 3,
    });
    handler = (_req, res) => res.end('{"object":"list","data":[]}');
    await client.probe(5000);
    expect(seen.map((s) => [s.method, s.url, s.authorization])).toEqual([
      ['POST', '/v1/chat/completions', undefined],
      ['POST', '/v1/embeddings', undefined],
      ['GET', '/v1/models', undefined],
    ]);
    expect(seen[1]!.body).toEqual({ model: 'e', input: 'x', encoding_format: 'float' });
  });

  it('assembles tool calls from their fragments, reports each chunk, and estimates absent usage', async () => {
    const call = (c: object) => ({ choices: [{ index: 0, delta: { tool_calls: [c] } }] });
    handler = (_req, res) =>
      sse(res, [
        call({ index: 0, id: 'call_1', type: 'function', function: { name: 'get_', arguments: '' } }),
        call({ index: 0, function: { name: 'weather', arguments: '{"city":' } }),
        call({ index: 0, function: { arguments: '"Oslo"}' } }),
        { choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] },
      ]);
    const events: ChatDelta[] = [];
    const req = chat();
    const r = await openAiClient({ name: 'p', apiKey: KEY, baseURL }).chat(req, undefined, (e) => events.push(e));
    expect(r.toolCalls).toEqual([
      { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } },
    ]);
    expect(events).toHaveLength(3);
    expect(r).toMatchObject({
      finishReason: 'tool_calls',
      usageReported: false,
      promptTokens: countPromptTokens(req.messages),
      completionTokens: countTokens('get_weather{"city":"Oslo"}'),
    });
  });

  it('maps a 401 to AUTH and a 500 with a JSON error body to UPSTREAM, the key scrubbed', async () => {
    const client = openAiClient({ name: 'p', apiKey: KEY, baseURL });
    const answer =
      (status: number, message: string): Handler =>
      (_req, res) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message, type: 'x', code: null } }));
      };
    handler = answer(401, `Incorrect API key provided: ${KEY.slice(0, 14)}****`);
    const auth = await client.chat(chat()).catch((e: unknown) => e);
    expect(auth).toBeInstanceOf(LlmCallError);
    expect(auth).toMatchObject({ kind: 'AUTH', status: 401, retryable: false });
    expect((auth as Error).message).toContain('p answered 401: Incorrect API key provided');
    expect((auth as Error).message).not.toContain(KEY.slice(0, 14));

    handler = answer(500, `upstream exploded for ${KEY}`);
    const upstream = await client.chat(chat()).catch((e: unknown) => e);
    expect(upstream).toMatchObject({ kind: 'UPSTREAM', status: 500, retryable: true });
    expect((upstream as Error).message).toBe('p answered 500: upstream exploded for [redacted]');

    handler = answer(403, 'no');
    await expect(client.probe(5000)).rejects.toMatchObject({ kind: 'AUTH', status: 403 });
  });

  it('maps an error event inside a 200 stream to UPSTREAM', async () => {
    handler = (_req, res) => sse(res, [text('Hi'), { error: { message: 'overloaded mid-stream' } }]);
    await expect(openAiClient({ name: 'p', apiKey: KEY, baseURL }).chat(chat())).rejects.toMatchObject({
      kind: 'UPSTREAM',
      status: undefined,
      message: 'p failed: overloaded mid-stream',
    });
  });

  it('maps a malformed answer to UPSTREAM', async () => {
    handler = (_req, res) => res.end('<html>gateway</html>');
    await expect(
      openAiClient({ name: 'p', apiKey: KEY, baseURL }).embed!({ model: 'e', input: 'x', timeoutMs: 5000 }),
    ).rejects.toMatchObject({ kind: 'UPSTREAM', message: 'p failed: malformed answer: <html>gateway</html>' });
  });

  it('maps a refused connection to NETWORK with its errno code', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const client = openAiClient({ name: 'p', apiKey: KEY, baseURL: `http://127.0.0.1:${port}/v1` });
    const err = await client.chat(chat()).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'NETWORK', retryable: true });
    expect((err as Error).message).toMatch(/^p could not be reached \(ECONNREFUSED\)/);
    await expect(client.probe(5000)).rejects.toMatchObject({ kind: 'NETWORK' });
  });

  it('maps a connection cut mid-answer to NETWORK', async () => {
    handler = (req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify(text('Hi'))}\n\n`);
      setTimeout(() => req.socket.destroy(), 20);
    };
    await expect(openAiClient({ name: 'p', apiKey: KEY, baseURL }).chat(chat())).rejects.toMatchObject({
      kind: 'NETWORK',
    });
  });

  it('times out a stream that stalls mid-way, after the chunks that came', async () => {
    handler = (_req, res) => sse(res, [text('one '), text('two ')], false);
    const deltas: string[] = [];
    const started = Date.now();
    const call = openAiClient({ name: 'p', apiKey: KEY, baseURL }).chat(chat({ timeoutMs: 300 }), (d) =>
      deltas.push(d),
    );
    await expect(call).rejects.toMatchObject({ kind: 'TIMEOUT', message: 'p did not answer within 300 ms' });
    expect(deltas).toEqual(['one ', 'two ']);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('stops when the caller aborts, before the answer or mid-stream', async () => {
    const client = openAiClient({ name: 'p', apiKey: KEY, baseURL });
    handler = () => {}; // never answers
    let controller = new AbortController();
    let call = client.chat(chat({ signal: controller.signal }));
    setTimeout(() => controller.abort(), 50);
    await expect(call).rejects.toMatchObject({ kind: 'ABORTED', retryable: false });

    handler = (_req, res) => sse(res, [text('one ')], false);
    controller = new AbortController();
    const c = controller;
    call = client.chat(chat({ signal: c.signal }), () => c.abort());
    await expect(call).rejects.toMatchObject({ kind: 'ABORTED' });
  });
});
