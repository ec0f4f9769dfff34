import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local server speaking Anthropic's Messages API (what `@anthropic-ai/sdk` talks to when
 * a provider's apiEndpoint is `fake.url`), strict about what it accepts the way the real
 * API is: tools must be Anthropic tool definitions (`name`, `input_schema`; no OpenAI
 * `type: "function"` / `function` wrapper), `tool_choice` one of Anthropic's, turns
 * alternating from a user turn, every `tool_result` answering a `tool_use` of the turn
 * before. A request breaking a rule gets a 400 `invalid_request_error` naming it.
 *
 * - `POST /v1/messages`: JSON, or with `stream: true` Anthropic's SSE events.
 * - `GET /v1/models`: a model list (the health probe).
 *
 * `script(...steps)` queues what the next messages calls answer (text and/or tool_use
 * blocks). Tokens are counted here (1 per started 4 characters: the request's system,
 * messages and tools as JSON for the input; the answer's text and tool inputs as JSON
 * for the output) and reported as usage; `served` is the ledger a test checks Steward by.
 */
export interface AnthropicStep {
  text?: string;
  toolUses?: { name: string; input: Record<string, unknown> }[];
  status?: number;
}

export interface AnthropicServed {
  model: string;
  stream: boolean;
  inputTokens: number;
  outputTokens: number;
}

export interface FakeAnthropic {
  url: string;
  /** Every POST /v1/messages body (accepted or refused), oldest first. */
  requests: any[];
  /** The refusals: their error messages, in order. */
  refused: string[];
  served: AnthropicServed[];
  script(...steps: AnthropicStep[]): void;
  reset(): void;
  close(): Promise<void>;
}

const tokens = (text: string) => Math.ceil(text.length / 4);

async function readBody(req: IncomingMessage): Promise<any> {
  const parts: Buffer[] = [];
  for await (const chunk of req) parts.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(parts).toString('utf8') || 'null');
}

/** The first rule of the Messages API the request breaks, or null. */
function problem(body: any): string | null {
  if (!body || typeof body.model !== 'string') return 'model: Field required';
  if (!Number.isInteger(body.max_tokens)) return 'max_tokens: Field required';
  if (!Array.isArray(body.messages) || !body.messages.length) return 'messages: at least one message is required';
  if (body.tools !== undefined) {
    if (!Array.isArray(body.tools)) return 'tools: Input should be a valid list';
    for (const [i, t] of body.tools.entries()) {
      if ('function' in t || t.type === 'function') return `tools.${i}: Extra inputs are not permitted (function)`;
      if (typeof t.name !== 'string' || !/^[a-zA-Z0-9_-]{1,128}$/.test(t.name)) return `tools.${i}.name: invalid`;
      if (!t.input_schema || t.input_schema.type !== 'object') return `tools.${i}.input_schema: Field required`;
    }
  }
  if (body.tool_choice !== undefined) {
    const c = body.tool_choice;
    if (!['auto', 'any', 'tool', 'none'].includes(c?.type)) return 'tool_choice.type: invalid';
    if (c.type === 'tool' && !body.tools?.some((t: any) => t.name === c.name)) return 'tool_choice.name: no such tool';
  }
  let toolUseIds = new Set<string>();
  for (const [i, m] of body.messages.entries()) {
    if (m.role !== (i % 2 === 0 ? 'user' : 'assistant'))
      return `messages.${i}.role: roles must alternate between "user" and "assistant", starting with "user"`;
    const blocks = typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content;
    if (!Array.isArray(blocks) || !blocks.length) return `messages.${i}.content: must not be empty`;
    const next = new Set<string>();
    for (const [j, b] of blocks.entries()) {
      if (b.type === 'tool_use') {
        if (m.role !== 'assistant') return `messages.${i}.content.${j}: tool_use only in assistant turns`;
        if (typeof b.id !== 'string' || !b.id || typeof b.input !== 'object')
          return `messages.${i}.content.${j}: tool_use needs id, name and an object input`;
        next.add(b.id);
      } else if (b.type === 'tool_result') {
        if (m.role !== 'user' || !toolUseIds.has(b.tool_use_id))
          return `messages.${i}.content.${j}: tool_result must answer a tool_use of the previous turn`;
      } else if (b.type === 'text') {
        if (typeof b.text !== 'string') return `messages.${i}.content.${j}.text: Field required`;
      } else if (b.type !== 'image') return `messages.${i}.content.${j}.type: unknown block ${b.type}`;
    }
    toolUseIds = next;
  }
  return null;
}

export async function startFakeAnthropic(): Promise<FakeAnthropic> {
  const requests: any[] = [];
  const refused: string[] = [];
  const served: AnthropicServed[] = [];
  let queue: AnthropicStep[] = [];
  let n = 0;

  const answer = async (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'GET' && req.url?.startsWith('/v1/models')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ data: [], has_more: false, first_id: null, last_id: null }));
    }
    if (req.method !== 'POST' || !req.url?.startsWith('/v1/messages')) {
      res.writeHead(404);
      return res.end();
    }
    const body = await readBody(req);
    requests.push(body);
    const bad = problem(body);
    const step = queue.shift() ?? { text: 'Hello from the fake Anthropic model.' };
    if (bad || step.status) {
      if (bad) refused.push(bad);
      res.writeHead(step.status ?? 400, { 'content-type': 'application/json' });
      return res.end(
        JSON.stringify({ type: 'error', error: { type: 'invalid_request_error', message: bad ?? 'scripted failure' } }),
      );
    }
    const id = `msg_fake_${++n}`;
    const uses = (step.toolUses ?? []).map((t, i) => ({ type: 'tool_use', id: `toolu_${n}_${i}`, ...t }));
    const content = [...(step.text ? [{ type: 'text', text: step.text }] : []), ...uses];
    const input = tokens(JSON.stringify([body.system ?? '', body.messages, body.tools ?? []]));
    const output = tokens((step.text ?? '') + uses.map((u) => JSON.stringify(u.input)).join(''));
    const stop = uses.length ? 'tool_use' : 'end_turn';
    served.push({ model: body.model, stream: !!body.stream, inputTokens: input, outputTokens: output });
    if (!body.stream) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(
        JSON.stringify({
          id,
          type: 'message',
          role: 'assistant',
          model: body.model,
          content,
          stop_reason: stop,
          stop_sequence: null,
          usage: { input_tokens: input, output_tokens: output },
        }),
      );
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const event = (type: string, data: Record<string, unknown>) =>
      res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
    event('message_start', {
      message: {
        id,
        type: 'message',
        role: 'assistant',
        model: body.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: input, output_tokens: 1 },
      },
    });
    content.forEach((b, index) => {
      if (b.type === 'text') {
        event('content_block_start', { index, content_block: { type: 'text', text: '' } });
        for (const word of (b as { text: string }).text.match(/\S+\s*/g) ?? [])
          event('content_block_delta', { index, delta: { type: 'text_delta', text: word } });
      } else {
        const u = b as { id: string; name: string; input: unknown };
        event('content_block_start', { index, content_block: { type: 'tool_use', id: u.id, name: u.name, input: {} } });
        const json = JSON.stringify(u.input);
        // In two pieces, as the API streams partial JSON.
        const cut = Math.ceil(json.length / 2);
        for (const piece of [json.slice(0, cut), json.slice(cut)])
          if (piece) event('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: piece } });
      }
      event('content_block_stop', { index });
    });
    event('message_delta', { delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: output } });
    event('message_stop', {});
    res.end();
  };

  const server = createServer((req, res) => {
    answer(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    refused,
    served,
    script: (...steps) => void queue.push(...steps),
    reset() {
      requests.length = 0;
      refused.length = 0;
      served.length = 0;
      queue = [];
      n = 0;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
