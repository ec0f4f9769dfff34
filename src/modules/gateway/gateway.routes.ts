import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EntityManager } from '@mikro-orm/postgresql';

import type { Route, RouteContext } from '../../server/http.js';
import { AppError, BadInputError } from '../../shared/errors.js';
import type { Viewer } from '../../shared/scope.js';
import { formatMicros, type BudgetState, type ChatDelta, type MeteredResult } from '../billing/index.js';
import { fromMessages, message, stopReason, toolUseBlocks } from './anthropic-format.js';
import { anthropicErrorBody, openAiErrorBody, toWireError, type WireError } from './errors.js';
import type { GatewayRequest, GatewayService } from './gateway.service.js';
import {
  chatCompletion,
  chunk,
  EmbeddingRequest,
  fromChatCompletion,
  parse,
  usageOf,
  type GatewayChat,
} from './openai-format.js';

class BodyTooLarge extends AppError {
  constructor(limit: number) {
    super('BAD_USER_INPUT', `The request body exceeds ${limit} bytes`);
  }
}

/**
 * The request's JSON body, at most `limit` bytes. Read with 'data'/'end' listeners: an
 * async iterator over the request costs a promise and a tick per chunk on the hot path.
 */
async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  if (Number(req.headers['content-length'] ?? 0) > limit) throw new BodyTooLarge(limit);
  const raw = await new Promise<Buffer>((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size <= limit) return void parts.push(c);
      reject(new BodyTooLarge(limit));
      req.destroy(); // no reading on: what a too large body cost is bounded
    };
    req.on('data', onData);
    req.once('end', () => resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts)));
    req.once('error', reject);
    // A client gone before the end: nothing more comes. (Not built on every close: an error's stack costs.)
    req.once('close', () => {
      if (!req.complete) reject(new BadInputError('The request body ended early'));
    });
  });
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new BadInputError('The request body is not valid JSON');
  }
}

type Format = 'openai' | 'anthropic';

const request = (req: IncomingMessage, ctx: RouteContext, caller: Pick<GatewayRequest, 'rules' | 'bindings'>) => ({
  headers: req.headers,
  meta: ctx.meta,
  em: ctx.runtime.orm.em as unknown as EntityManager,
  rules: caller.rules,
  bindings: caller.bindings,
});

function sendError(res: ServerResponse, format: Format, e: WireError, extra: Record<string, string>) {
  const body = JSON.stringify(format === 'anthropic' ? anthropicErrorBody(e) : openAiErrorBody(e));
  res.writeHead(e.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...e.headers,
    ...extra,
  });
  res.end(body);
}

const stewardHeaders = (ctx: RouteContext) => ({ 'x-steward-request-id': ctx.meta.requestId });
const costHeaders = (m: MeteredResult) => ({
  'x-steward-cost-usd': m.costUsd,
  ...(m.promptLogId ? { 'x-steward-prompt-log-id': m.promptLogId } : {}),
  ...budgetHeaders(m.budgets),
});

/**
 * What is left of the tightest cost limit the call counted against (the key's, the user's,
 * the project's or the organisation's, daily or monthly): `x-steward-budget-remaining-usd`
 * and which limit it is, `x-steward-budget-limit: <level>/<day|month>`. None without a limit.
 * A stream's headers go out before the answer, so there the figure is after reserving the
 * call's worst case; a plain answer's is after charging it.
 */
function budgetHeaders(budgets: readonly BudgetState[]): Record<string, string> {
  let tightest: BudgetState | undefined;
  for (const b of budgets) if (!tightest || b.limit - b.spent < tightest.limit - tightest.spent) tightest = b;
  if (!tightest) return {};
  const left = tightest.limit > tightest.spent ? tightest.limit - tightest.spent : 0n;
  return {
    'x-steward-budget-remaining-usd': formatMicros(left),
    'x-steward-budget-limit': `${tightest.level}/${tightest.period.toLowerCase()}`,
  };
}

/** An AbortSignal that fires when the client goes away before the answer is complete. */
function clientGone(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort(new Error('the client went away'));
  });
  return controller.signal;
}

/** One authenticated gateway call: the HTTP exchange, who is calling, and the request the gateway service takes. */
interface GatewayCall {
  gateway: GatewayService;
  req: IncomingMessage;
  res: ServerResponse;
  ctx: RouteContext;
  viewer: Viewer;
  gw: GatewayRequest;
}

type CallHandler = (call: GatewayCall) => Promise<void>;

/** Ends a stream that failed after its headers went out: the format's error event, then the end. */
function endStreamWithError(res: ServerResponse, format: Format, e: WireError) {
  if (res.writableEnded || res.destroyed) return;
  if (format === 'anthropic') res.write(`event: error\ndata: ${JSON.stringify(anthropicErrorBody(e))}\n\n`);
  else res.write(`data: ${JSON.stringify(openAiErrorBody(e))}\n\n`);
  res.end();
}

/** Authenticates the caller, runs the handler, and answers any failure in the route's own error format. */
const handle =
  (gateway: GatewayService, format: Format, fn: CallHandler) =>
  async (req: IncomingMessage, res: ServerResponse, ctx: RouteContext) => {
    try {
      const em = ctx.runtime.orm.em as unknown as EntityManager;
      const caller = await gateway.caller(req.headers, em, ctx.runtime.bus);
      await fn({ gateway, req, res, ctx, viewer: caller.viewer, gw: request(req, ctx, caller) });
    } catch (err) {
      if (!(err instanceof AppError))
        ctx.runtime.logger.error({ module: 'gateway', err, requestId: ctx.meta.requestId }, 'gateway request failed');
      const e = toWireError(err);
      if (!res.headersSent) return sendError(res, format, e, stewardHeaders(ctx));
      endStreamWithError(res, format, e);
    }
  };

function sendJson(res: ServerResponse, ctx: RouteContext, body: string, extra: Record<string, string> = {}) {
  res.writeHead(200, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...stewardHeaders(ctx),
    ...extra,
  });
  res.end(body);
}

/** The SSE response headers, with what is left of the budget after reserving the call's worst case. */
function openEventStream(res: ServerResponse, ctx: RouteContext, reserved: readonly BudgetState[]) {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    ...stewardHeaders(ctx),
    ...budgetHeaders(reserved),
  });
}

async function openAiModels({ gateway, res, ctx, viewer, gw }: GatewayCall) {
  const models = await gateway.models(viewer, gw.rules);
  const body = JSON.stringify({
    object: 'list',
    data: models.map((m) => ({ id: m.id, object: 'model', created: m.created, owned_by: m.ownedBy })),
  });
  sendJson(res, ctx, body);
}

async function openAiEmbeddings({ gateway, req, res, ctx, viewer, gw }: GatewayCall) {
  const body = parse(EmbeddingRequest, await readJson(req, ctx.runtime.config.MAX_BODY_BYTES));
  const m = await gateway.embed(viewer, gw, body, clientGone(res));
  const out = JSON.stringify({
    object: 'list',
    model: body.model,
    data: (m.embeddings ?? []).map((e) => ({ object: 'embedding', index: e.index, embedding: e.embedding })),
    usage: { prompt_tokens: m.promptTokens, total_tokens: m.promptTokens },
  });
  sendJson(res, ctx, out, costHeaders(m));
}

async function openAiChat(call: GatewayCall) {
  const { gateway, req, res, ctx, viewer, gw } = call;
  const chat = fromChatCompletion(await readJson(req, ctx.runtime.config.MAX_BODY_BYTES));
  const id = `chatcmpl-${ctx.meta.requestId}`;
  const created = Math.floor(Date.now() / 1000);
  if (chat.stream) return openAiChatStream(call, chat, id, created);
  const m = await gateway.chat(viewer, gw, chat, { signal: clientGone(res) });
  sendJson(res, ctx, JSON.stringify(chatCompletion(id, created, chat.model, m)), costHeaders(m));
}

async function openAiChatStream(
  { gateway, res, ctx, viewer, gw }: GatewayCall,
  chat: GatewayChat,
  id: string,
  created: number,
) {
  const send = (data: unknown) => res.write(`data: ${JSON.stringify(data)}\n\n`);
  let reserved: BudgetState[] = [];
  const onReserved = (b: BudgetState[]) => void (reserved = b);
  const open = () => {
    if (res.headersSent) return;
    openEventStream(res, ctx, reserved);
    send(chunk(id, created, chat.model, { role: 'assistant', content: '' }, null, chat.includeUsage));
  };
  const onEvent = (d: ChatDelta) => {
    open();
    send(
      chunk(
        id,
        created,
        chat.model,
        { ...(d.text ? { content: d.text } : {}), ...(d.toolCalls ? { tool_calls: d.toolCalls } : {}) },
        null,
        chat.includeUsage,
      ),
    );
  };
  const m = await gateway.chat(viewer, gw, chat, { onEvent, onReserved, signal: clientGone(res) });
  open();
  send(
    chunk(
      id,
      created,
      chat.model,
      {},
      m.finishReason ?? (m.toolCalls?.length ? 'tool_calls' : 'stop'),
      chat.includeUsage,
    ),
  );
  if (chat.includeUsage)
    send({ id, object: 'chat.completion.chunk', created, model: chat.model, choices: [], usage: usageOf(m) });
  res.write(`: x-steward-cost-usd ${m.costUsd}\n\n`); // an SSE comment: clients skip it, curl shows it
  res.end('data: [DONE]\n\n');
}

async function anthropicMessages(call: GatewayCall) {
  const { gateway, req, res, ctx, viewer, gw } = call;
  const chat: GatewayChat = fromMessages(await readJson(req, ctx.runtime.config.MAX_BODY_BYTES));
  const id = `msg_${ctx.meta.requestId.replace(/[^\w]/g, '')}`;
  if (chat.stream) return anthropicMessagesStream(call, chat, id);
  const m = await gateway.chat(viewer, gw, chat, { signal: clientGone(res) });
  sendJson(res, ctx, JSON.stringify(message(id, chat.model, m)), costHeaders(m));
}

type SendEvent = (type: string, data: Record<string, unknown>) => void;

/** The close of an Anthropic stream: each tool call as a whole tool_use block, then the stop reason and usage. */
function endAnthropicStream(res: ServerResponse, event: SendEvent, m: MeteredResult, firstBlock: number) {
  let blocks = firstBlock;
  for (const b of toolUseBlocks(m)) {
    event('content_block_start', {
      index: blocks,
      content_block: { type: 'tool_use', id: b.id, name: b.name, input: {} },
    });
    event('content_block_delta', {
      index: blocks,
      delta: { type: 'input_json_delta', partial_json: JSON.stringify(b.input) },
    });
    event('content_block_stop', { index: blocks++ });
  }
  event('message_delta', {
    delta: { stop_reason: stopReason(m.finishReason), stop_sequence: null },
    usage: { input_tokens: m.promptTokens, output_tokens: m.completionTokens },
  });
  event('message_stop', {});
  res.end();
}

async function anthropicMessagesStream({ gateway, res, ctx, viewer, gw }: GatewayCall, chat: GatewayChat, id: string) {
  const event: SendEvent = (type, data) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
  let textOpen = false;
  let blocks = 0;
  let reserved: BudgetState[] = [];
  const onReserved = (b: BudgetState[]) => void (reserved = b);
  const open = () => {
    if (res.headersSent) return;
    openEventStream(res, ctx, reserved);
    event('message_start', {
      message: {
        id,
        type: 'message',
        role: 'assistant',
        model: chat.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 0, output_tokens: 0 },
      },
    });
  };
  const onEvent = (d: ChatDelta) => {
    if (!d.text) return; // tool calls are sent whole at the end (their arguments are JSON only once complete)
    open();
    if (!textOpen) {
      textOpen = true;
      event('content_block_start', { index: blocks, content_block: { type: 'text', text: '' } });
    }
    event('content_block_delta', { index: blocks, delta: { type: 'text_delta', text: d.text } });
  };
  const m = await gateway.chat(viewer, gw, chat, { onEvent, onReserved, signal: clientGone(res) });
  open();
  if (textOpen) event('content_block_stop', { index: blocks++ });
  endAnthropicStream(res, event, m, blocks);
}

/**
 * The AI gateway's HTTP surface, on the same port as /graphql (see GatewayService for
 * the rules): OpenAI's `GET /v1/models`, `POST /v1/chat/completions`, `POST /v1/embeddings`,
 * and Anthropic's `POST /v1/messages`, each with its own error shape. Streams are relayed
 * delta by delta as the provider sends them (no buffering); the SSE headers go out with
 * the first delta, so a refusal before the provider is asked still gets its own status.
 */
export function gatewayRoutes(gateway: GatewayService): Route[] {
  return [
    { method: 'GET', path: /^\/v1\/models\/?$/, handler: handle(gateway, 'openai', openAiModels) },
    { method: 'POST', path: /^\/v1\/chat\/completions\/?$/, handler: handle(gateway, 'openai', openAiChat) },
    { method: 'POST', path: /^\/v1\/messages\/?$/, handler: handle(gateway, 'anthropic', anthropicMessages) },
    { method: 'POST', path: /^\/v1\/embeddings\/?$/, handler: handle(gateway, 'openai', openAiEmbeddings) },
  ];
}
