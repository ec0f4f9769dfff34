import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local OpenAI-compatible HTTP server on 127.0.0.1 (a free port) for tests: what the
 * official SDK talks to when a provider's apiEndpoint is `fake.baseURL`.
 *
 * - `POST /v1/chat/completions`: JSON, or with `stream: true` Server-Sent Events (one
 *   chunk per word, then a chunk with `finish_reason`, then, when the request asked for
 *   `stream_options.include_usage`, a chunk with the usage, then `[DONE]`).
 * - `GET /v1/models`: the model list (what the health check asks for).
 *
 * What a completion does is scripted: `script(...steps)` queues one step per coming chat
 * completion, in order (a step with `times: n` answers n of them); with the queue empty
 * the default step answers (see `setDefault`). `down()` makes every request (models
 * included) fail until `up()`. Every request is recorded in `requests`, Authorization
 * header included, so a test can see which key a call used.
 *
 * ```ts
 * const fake = await startFakeOpenAI();
 * onTestFinished(() => fake.close());
 * fake.script({ reply: 'Hi there', usage: { prompt_tokens: 12, completion_tokens: 3 } }, { status: 500 });
 * ```
 */

export interface FakeUsage {
  prompt_tokens: number;
  completion_tokens: number;
}

export interface FakeStep {
  /** The reply's text (default "Hello from the fake model."); streamed one word per chunk. */
  reply?: string;
  /** The stream's chunks exactly (their concatenation is the reply); overrides `reply`. */
  chunks?: string[];
  /**
   * The usage reported. Default: 1 token per started 4 characters (prompt: the messages'
   * contents; completion: the reply). Partial values override either count; `null`
   * reports none at all (a server that ignores include_usage).
   */
  usage?: Partial<FakeUsage> | null;
  /** The model named in the answer (default: the one asked for). */
  model?: string;
  /** Answer with this HTTP status and an OpenAI-style error body instead. */
  status?: number;
  /** The error's message (with `status`). */
  message?: string;
  /** Wait this long before answering at all (to overlap calls, or to exceed a timeout). */
  delayMs?: number;
  /** Wait this long between streamed chunks. */
  chunkDelayMs?: number;
  /** Stream this many chunks, then stall without ever finishing (a timeout mid-stream). */
  stallAfterChunks?: number;
  /** Close the connection without answering (a network failure). */
  drop?: boolean;
  /** How many chat completions this step answers (default 1). */
  times?: number;
}

export interface RecordedRequest {
  method: string;
  /** The path with its query, e.g. `/v1/chat/completions`. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** The Authorization header (`Bearer …`), or null when none was sent. */
  authorization: string | null;
  /** The parsed JSON body (null for a GET). */
  body: any;
}

export interface FakeOpenAI {
  /** http://127.0.0.1:port (the origin). */
  url: string;
  /** `${url}/v1`: what a provider's apiEndpoint (the SDK's baseURL) should be. */
  baseURL: string;
  /** Every request received, oldest first. */
  requests: RecordedRequest[];
  /** The chat completion requests only. */
  readonly completions: RecordedRequest[];
  /** Queues steps for the next chat completions, in order. */
  script(...steps: FakeStep[]): void;
  /** What answers a chat completion when no scripted step is left (default: a plain reply). */
  setDefault(step: FakeStep): void;
  /** Every request fails with `status` (or its connection is dropped, with `drop: true`) until `up()`. */
  down(opts?: { status?: number; drop?: boolean }): void;
  up(): void;
  /** Forgets recorded requests, scripted steps, the default and any outage. */
  reset(): void;
  /** Stops the server, cutting any stalled stream. */
  close(): Promise<void>;
}

const DEFAULT_REPLY = 'Hello from the fake model.';
const tokens = (text: string) => Math.ceil(text.length / 4);

async function readBody(req: IncomingMessage): Promise<any> {
  const parts: Buffer[] = [];
  for await (const chunk of req) parts.push(chunk as Buffer);
  const text = Buffer.concat(parts).toString('utf8');
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function error(res: ServerResponse, status: number, message: string) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { message, type: status >= 500 ? 'server_error' : 'invalid_request_error', param: null, code: null } }));
}

export async function startFakeOpenAI(): Promise<FakeOpenAI> {
  const requests: RecordedRequest[] = [];
  let queue: FakeStep[] = [];
  let fallback: FakeStep = {};
  let outage: { status?: number; drop?: boolean } | null = null;
  let closing = false;

  const next = (): FakeStep => {
    const step = queue[0];
    if (!step) return fallback;
    if ((step.times ?? 1) <= 1) queue.shift();
    else queue[0] = { ...step, times: (step.times ?? 1) - 1 };
    return step;
  };

  async function completion(req: IncomingMessage, res: ServerResponse, body: any) {
    const step = next();
    if (step.delayMs) await sleep(step.delayMs);
    if (step.drop) return void req.socket.destroy();
    if (step.status) return error(res, step.status, step.message ?? `fake failure ${step.status}`);

    const messages: { content?: unknown }[] = Array.isArray(body?.messages) ? body.messages : [];
    const reply = step.chunks ? step.chunks.join('') : (step.reply ?? DEFAULT_REPLY);
    const chunks = step.chunks ?? reply.match(/\S+\s*/g) ?? [];
    const usage =
      step.usage === null
        ? null
        : {
            prompt_tokens: step.usage?.prompt_tokens ?? messages.reduce<number>((n, m) => n + tokens(typeof m.content === 'string' ? m.content : JSON.stringify(m.content ?? '')), 0),
            completion_tokens: step.usage?.completion_tokens ?? tokens(reply),
          };
    const withTotal = usage && { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens };
    const model = step.model ?? String(body?.model ?? 'fake-model');
    const id = `chatcmpl-fake-${requests.length}`;
    const created = Math.floor(Date.now() / 1000);

    if (!body?.stream) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(
        JSON.stringify({
          id,
          object: 'chat.completion',
          created,
          model,
          choices: [{ index: 0, message: { role: 'assistant', content: reply, refusal: null }, finish_reason: 'stop', logprobs: null }],
          ...(withTotal ? { usage: withTotal } : {}),
        }),
      );
    }

    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const send = (data: unknown) => res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
    const chunk = (delta: Record<string, unknown>, finish: string | null) => ({
      id,
      object: 'chat.completion.chunk',
      created,
      model,
      choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
      ...(body?.stream_options?.include_usage ? { usage: null } : {}),
    });
    send(chunk({ role: 'assistant', content: '' }, null));
    for (const [i, text] of chunks.entries()) {
      if (step.stallAfterChunks !== undefined && i >= step.stallAfterChunks) return; // never finishes
      if (step.chunkDelayMs) await sleep(step.chunkDelayMs);
      if (res.destroyed) return;
      send(chunk({ content: text }, null));
    }
    if (step.stallAfterChunks !== undefined && chunks.length <= step.stallAfterChunks) return;
    send(chunk({}, 'stop'));
    if (body?.stream_options?.include_usage && withTotal) send({ id, object: 'chat.completion.chunk', created, model, choices: [], usage: withTotal });
    send('[DONE]');
    res.end();
  }

  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const auth = req.headers.authorization;
      requests.push({ method: req.method ?? 'GET', path: req.url ?? '/', headers: { ...req.headers }, authorization: typeof auth === 'string' ? auth : null, body });
      if (closing) return void req.socket.destroy();
      if (outage) {
        if (outage.drop) return void req.socket.destroy();
        return error(res, outage.status ?? 503, 'the fake server is down');
      }
      const path = (req.url ?? '/').split('?')[0];
      if (req.method === 'POST' && path === '/v1/chat/completions') return completion(req, res, body);
      if (req.method === 'GET' && path === '/v1/models') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.end(JSON.stringify({ object: 'list', data: [{ id: 'fake-model', object: 'model', created: 0, owned_by: 'steward-tests' }] }));
      }
      error(res, 404, `no route ${req.method} ${path}`);
    })().catch((err) => {
      if (!res.headersSent) error(res, 500, String(err));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    baseURL: `${url}/v1`,
    requests,
    get completions() {
      return requests.filter((r) => r.method === 'POST' && r.path.startsWith('/v1/chat/completions'));
    },
    script: (...steps) => void queue.push(...steps),
    setDefault: (step) => void (fallback = step),
    down: (opts = {}) => void (outage = opts),
    up: () => void (outage = null),
    reset() {
      requests.length = 0;
      queue = [];
      fallback = {};
      outage = null;
    },
    close() {
      closing = true;
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
