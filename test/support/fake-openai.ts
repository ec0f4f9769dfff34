import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { countTokens as o200k } from 'gpt-tokenizer/encoding/o200k_base';

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
  /** Answer with these tool calls (streamed as tool_call fragments; finish_reason "tool_calls"). */
  toolCalls?: { name: string; arguments: string }[];
}

/**
 * What the fake itself served, counted on its side of the wire: a test checks Steward's
 * books against this, never against Steward's own report. A completion's tokens are the
 * prompt's (1 per started 4 characters of each message's content) and, for the reply, what
 * was actually written before the stream ended, stalled or the client left.
 */
export interface ServedCall {
  model: string;
  stream: boolean;
  promptTokens: number;
  completionTokens: number;
  /** The reply text written to the wire. */
  text: string;
  /** The answer was complete (finish_reason and, when asked, usage sent). */
  complete: boolean;
  /** The usage the fake reported (null: none). */
  reportedUsage: FakeUsage | null;
  /** The request's max_tokens / max_completion_tokens. */
  maxTokens: number | null;
}

export interface FakeLedger {
  /** One entry per chat completion that got a 200 answer (in part or in full), in order. */
  calls: ServedCall[];
  embeddings: { model: string; promptTokens: number }[];
  /** The completions' token totals. */
  totals(): { calls: number; promptTokens: number; completionTokens: number };
  /**
   * What the served calls cost at the given prices (dollars per 1k tokens, decimal strings),
   * exactly, in micro-dollars as a fraction: `{ micros: number of whole micro-dollars, rounded
   * up, of the sum }`. The fake's own arithmetic, independent of Steward's.
   */
  spendMicros(inPer1k: string, outPer1k: string): bigint;
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
  /** What was served, counted here (see FakeLedger). */
  ledger: FakeLedger;
  /** Resolves when `n` chat completion requests have arrived. */
  received(n: number, timeoutMs?: number): Promise<void>;
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

/** Decimal dollars ("0.002000") to whole nano-dollars, by string arithmetic. */
const nanos = (price: string) => {
  const [whole, frac = ''] = price.split('.');
  return BigInt(whole!) * 1_000_000_000n + BigInt(frac.padEnd(9, '0').slice(0, 9));
};
const tokens = (text: string) => Math.ceil(text.length / 4);

/**
 * How the fake counts tokens, as a real provider would: for OpenAI's o200k models (gpt-4o…,
 * gpt-4.1, gpt-5, o-series) with that tokenizer and OpenAI's chat framing (3 tokens per
 * message, 3 priming the reply); for any other model name, 1 token per started 4 characters.
 */
function counterFor(model: string) {
  if (!/^(gpt-4o|gpt-4\.1|gpt-5|o[134])/.test(model))
    return { prompt: (contents: string[]) => contents.reduce((n, c) => n + tokens(c), 0), completion: tokens };
  const count = (t: string) => o200k(t, { allowedSpecial: new Set(), disallowedSpecial: new Set() });
  return { prompt: (contents: string[]) => contents.reduce((n, c) => n + count(c) + 3, 3), completion: count };
}

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
  res.end(
    JSON.stringify({
      error: { message, type: status >= 500 ? 'server_error' : 'invalid_request_error', param: null, code: null },
    }),
  );
}

export async function startFakeOpenAI(): Promise<FakeOpenAI> {
  const requests: RecordedRequest[] = [];
  let queue: FakeStep[] = [];
  let fallback: FakeStep = {};
  let outage: { status?: number; drop?: boolean } | null = null;
  let closing = false;
  const calls: ServedCall[] = [];
  const embeddings: { model: string; promptTokens: number }[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const ledger: FakeLedger = {
    calls,
    embeddings,
    totals: () => ({
      calls: calls.length,
      promptTokens: calls.reduce((n, c) => n + c.promptTokens, 0),
      completionTokens: calls.reduce((n, c) => n + c.completionTokens, 0),
    }),
    spendMicros(inPer1k, outPer1k) {
      // tokens × nano-dollars per 1k tokens = pico-dollars × 1000 ... summed exactly, rounded up once.
      const total = calls.reduce(
        (n, c) => n + BigInt(c.promptTokens) * nanos(inPer1k) + BigInt(c.completionTokens) * nanos(outPer1k),
        0n,
      );
      const perMicro = 1000n * 1000n; // (nano/1k tokens × tokens) / 1000 = nano; nano / 1000 = micro
      return (total + perMicro - 1n) / perMicro;
    },
  };

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
    if (res.destroyed || req.socket.destroyed) return; // the client left while it waited: nothing served
    if (step.drop) return void req.socket.destroy();
    if (step.status) return error(res, step.status, step.message ?? `fake failure ${step.status}`);

    const messages: { content?: unknown }[] = Array.isArray(body?.messages) ? body.messages : [];
    const reply = step.chunks ? step.chunks.join('') : (step.reply ?? DEFAULT_REPLY);
    const chunks = step.chunks ?? reply.match(/\S+\s*/g) ?? [];
    const counter = counterFor(String(body?.model ?? ''));
    const contents = messages.map((m) => (typeof m.content === 'string' ? m.content : JSON.stringify(m.content ?? '')));
    const usage =
      step.usage === null
        ? null
        : {
            prompt_tokens: step.usage?.prompt_tokens ?? counter.prompt(contents),
            completion_tokens: step.usage?.completion_tokens ?? counter.completion(reply),
          };
    const withTotal = usage && { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens };
    const model = step.model ?? String(body?.model ?? 'fake-model');
    const id = `chatcmpl-fake-${requests.length}`;
    const created = Math.floor(Date.now() / 1000);
    const promptTokens = usage?.prompt_tokens ?? counter.prompt(contents);
    const served: ServedCall = {
      model,
      stream: !!body?.stream,
      promptTokens,
      completionTokens: 0,
      text: '',
      complete: false,
      reportedUsage: usage,
      maxTokens: body?.max_completion_tokens ?? body?.max_tokens ?? null,
    };
    const tools = (step.toolCalls ?? []).map((t, i) => ({
      id: `call_fake_${requests.length}_${i}`,
      type: 'function' as const,
      function: { name: t.name, arguments: t.arguments },
    }));
    const toolText = tools.map((t) => t.function.name + t.function.arguments).join('');
    calls.push(served);
    // What the reply cost the fake: the reported count when complete, else the tokens of what was written.
    const wrote = (text: string) => {
      served.text += text;
      served.completionTokens = counter.completion(served.text);
    };
    const finished = () => {
      served.complete = true;
      served.completionTokens = usage?.completion_tokens ?? counter.completion(reply + toolText);
    };

    if (!body?.stream) {
      wrote(reply + toolText);
      finished();
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(
        JSON.stringify({
          id,
          object: 'chat.completion',
          created,
          model,
          choices: [
            {
              index: 0,
              message: {
                role: 'assistant',
                content: tools.length ? null : reply,
                refusal: null,
                ...(tools.length ? { tool_calls: tools } : {}),
              },
              finish_reason: tools.length ? 'tool_calls' : 'stop',
              logprobs: null,
            },
          ],
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
    for (const [i, text] of (tools.length ? [] : chunks).entries()) {
      if (step.stallAfterChunks !== undefined && i >= step.stallAfterChunks) return; // never finishes
      if (step.chunkDelayMs) await sleep(step.chunkDelayMs);
      if (res.destroyed || res.writableEnded) return;
      send(chunk({ content: text }, null));
      wrote(text);
    }
    for (const [i, t] of tools.entries()) {
      send(
        chunk(
          {
            tool_calls: [{ index: i, id: t.id, type: 'function', function: { name: t.function.name, arguments: '' } }],
          },
          null,
        ),
      );
      send(chunk({ tool_calls: [{ index: i, function: { arguments: t.function.arguments } }] }, null));
      wrote(t.function.name + t.function.arguments);
    }
    if (step.stallAfterChunks !== undefined && chunks.length <= step.stallAfterChunks) return;
    send(chunk({}, tools.length ? 'tool_calls' : 'stop'));
    if (body?.stream_options?.include_usage && withTotal)
      send({ id, object: 'chat.completion.chunk', created, model, choices: [], usage: withTotal });
    send('[DONE]');
    finished();
    res.end();
  }

  async function embedding(res: ServerResponse, body: any) {
    const input: string[] = Array.isArray(body?.input) ? body.input : [String(body?.input ?? '')];
    const promptTokens = input.reduce((n, t) => n + tokens(String(t)), 0);
    const model = String(body?.model ?? 'fake-embedding');
    embeddings.push({ model, promptTokens });
    const vector = (t: string) =>
      Array.from({ length: 8 }, (_, i) => ((t.charCodeAt(i % Math.max(1, t.length)) || 0) % 97) / 97);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        object: 'list',
        model,
        data: input.map((t, index) => ({ object: 'embedding', index, embedding: vector(String(t)) })),
        usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
      }),
    );
  }

  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const auth = req.headers.authorization;
      requests.push({
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        headers: { ...req.headers },
        authorization: typeof auth === 'string' ? auth : null,
        body,
      });
      const n = requests.filter((r) => r.method === 'POST' && r.path.startsWith('/v1/chat/completions')).length;
      for (const w of waiters.filter((x) => x.n <= n)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
      if (closing) return void req.socket.destroy();
      if (outage) {
        if (outage.drop) return void req.socket.destroy();
        return error(res, outage.status ?? 503, 'the fake server is down');
      }
      const path = (req.url ?? '/').split('?')[0];
      if (req.method === 'POST' && path === '/v1/chat/completions') return completion(req, res, body);
      if (req.method === 'POST' && path === '/v1/embeddings') return embedding(res, body);
      if (req.method === 'GET' && path === '/v1/models') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.end(
          JSON.stringify({
            object: 'list',
            data: [{ id: 'fake-model', object: 'model', created: 0, owned_by: 'steward-tests' }],
          }),
        );
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
    ledger,
    received(n, timeoutMs = 10_000) {
      const have = requests.filter((r) => r.method === 'POST' && r.path.startsWith('/v1/chat/completions')).length;
      if (have >= n) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the fake received ${have} of ${n} completions`)), timeoutMs);
        waiters.push({ n, resolve: () => (clearTimeout(timer), resolve()) });
      });
    },
    get completions() {
      return requests.filter((r) => r.method === 'POST' && r.path.startsWith('/v1/chat/completions'));
    },
    script: (...steps) => void queue.push(...steps),
    setDefault: (step) => void (fallback = step),
    down: (opts = {}) => void (outage = opts),
    up: () => void (outage = null),
    reset() {
      requests.length = 0;
      calls.length = 0;
      embeddings.length = 0;
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
