import type { ChatDelta, ChatRequest, ChatResult, EmbeddingRequest, EmbeddingResult, ToolCall } from '../llm.js';
import { deadlineFor, withDeadline } from './errors.js';
import { countPromptTokens, countTokens } from './local.js';
import { drain, endpointFor, readEvents, readJson, send } from './openai-http.js';
import type { ProviderClient } from './provider-client.js';

export const OPENAI_BASE_URL = 'https://api.openai.com/v1';

export interface OpenAiClientOptions {
  /** The provider's name, for error messages. */
  name: string;
  /**
   * The key sent as `Authorization: Bearer …`; null for a keyless self-hosted endpoint
   * (Ollama, vLLM without --api-key), which then gets no Authorization header at all.
   */
  apiKey: string | null;
  /** An OpenAI-compatible endpoint (its `/v1` base); default: OpenAI's own API. */
  baseURL?: string | null;
}

/**
 * OPENAI and any OpenAI-compatible endpoint, over Steward's lean HTTP transport
 * (openai-http.ts: keep-alive pools per provider origin). Every option is explicit, so no
 * OPENAI_* environment variable of the host can redirect or re-key a call. No retries:
 * the metered pipeline decides about retries and fallbacks.
 *
 * Replies stream (`stream: true`, `stream_options.include_usage` so that the token
 * counts arrive in the final chunk). An endpoint that sends no usage gets its counts
 * estimated with Steward's tokenizer rule (see countTokens). OpenAI's own API is sent
 * `max_completion_tokens` (its newer models refuse `max_tokens`); other endpoints are
 * sent `max_tokens`, which all OpenAI-compatible servers understand. The gateway's
 * pass-through (the caller's own messages, tools, tool_choice, temperature, stop, user)
 * is sent as given, and tool calls come back assembled from their streamed fragments.
 */
export function openAiClient(opts: OpenAiClientOptions): ProviderClient {
  const official = !opts.baseURL;
  const ep = endpointFor(opts.baseURL ?? OPENAI_BASE_URL, opts.apiKey);
  const deadline = deadlineFor(opts.name, opts.apiKey);

  return {
    chat(
      req: ChatRequest,
      onDelta?: (text: string) => void,
      onEvent?: (delta: ChatDelta) => void,
    ): Promise<ChatResult> {
      return withDeadline(deadline(req.timeoutMs, req.signal), async (signal) => {
        const res = await send(ep, 'POST', '/chat/completions', chatBody(req, official), signal);
        const reply = chatAssembler(req, onDelta, onEvent);
        await readEvents(res, reply.add);
        return reply.result();
      });
    },

    embed(req: EmbeddingRequest): Promise<EmbeddingResult> {
      return withDeadline(deadline(req.timeoutMs, req.signal), async (signal) => {
        const body = {
          model: req.model,
          input: req.input,
          ...(req.dimensions ? { dimensions: req.dimensions } : {}),
          encoding_format: req.encodingFormat ?? 'float',
        };
        const r = await readJson<EmbeddingAnswer>(await send(ep, 'POST', '/embeddings', body, signal));
        return {
          data: r.data.map((d) => ({ index: d.index, embedding: d.embedding })),
          model: r.model ?? req.model,
          promptTokens: r.usage?.prompt_tokens ?? 0,
        };
      });
    },

    /** Lists the models: free, needs no model name, and proves both the endpoint and the key. */
    probe(timeoutMs: number): Promise<void> {
      return withDeadline(deadline(timeoutMs), async (signal) => {
        await drain(await send(ep, 'GET', '/models', undefined, signal));
      });
    },
  };
}

interface EmbeddingAnswer {
  data: { index: number; embedding: number[] | string }[];
  model?: string;
  usage?: { prompt_tokens?: number };
}

/**
 * The Chat Completions request: Steward's own messages, or the gateway's pass-through as
 * given; OpenAI's own API takes `max_completion_tokens`, compatible servers `max_tokens`.
 */
function chatBody(req: ChatRequest, official: boolean): Record<string, unknown> {
  const pt = req.passThrough;
  return {
    model: req.model,
    messages: pt?.messages ?? req.messages.map((m) => ({ role: m.role, content: m.content })),
    stream: true,
    stream_options: { include_usage: true },
    ...(official ? { max_completion_tokens: req.maxTokens } : { max_tokens: req.maxTokens }),
    ...(pt?.tools ? { tools: pt.tools } : {}),
    ...(pt?.toolChoice !== undefined ? { tool_choice: pt.toolChoice } : {}),
    ...(pt?.temperature !== undefined ? { temperature: pt.temperature } : {}),
    ...(pt?.topP !== undefined ? { top_p: pt.topP } : {}),
    ...(pt?.stop !== undefined ? { stop: pt.stop } : {}),
    ...(pt?.user !== undefined ? { user: pt.user } : {}),
  };
}

/** One streamed Chat Completions chunk, as far as Steward reads it. */
interface ChatChunk {
  model?: string;
  choices?: {
    delta?: { content?: string | null; tool_calls?: ChatDelta['toolCalls'] };
    finish_reason?: string | null;
  }[];
  usage?: { prompt_tokens: number; completion_tokens: number } | null;
}

/**
 * Text and tool calls assembled from the streamed chunks as they arrive (`add`, one per
 * chunk, calling onDelta/onEvent); token counts estimated when the endpoint sent no usage.
 */
function chatAssembler(
  req: ChatRequest,
  onDelta?: (text: string) => void,
  onEvent?: (delta: ChatDelta) => void,
): { add: (chunk: unknown) => void; result: () => ChatResult } {
  let content = '';
  let model = req.model;
  let finishReason: string | undefined;
  const tools: ToolCall[] = [];
  let usage: ChatChunk['usage'];
  const add = (data: unknown) => {
    const chunk = data as ChatChunk;
    if (chunk.model) model = chunk.model;
    const choice = chunk.choices?.[0];
    const delta = choice?.delta?.content;
    if (delta) {
      content += delta;
      onDelta?.(delta);
    }
    const calls = choice?.delta?.tool_calls;
    if (calls?.length) {
      for (const c of calls) {
        const t = (tools[c.index] ??= { id: '', type: 'function', function: { name: '', arguments: '' } });
        if (c.id) t.id = c.id;
        if (c.function?.name) t.function.name += c.function.name;
        if (c.function?.arguments) t.function.arguments += c.function.arguments;
      }
    }
    if (onEvent && (delta || calls?.length))
      onEvent({ ...(delta ? { text: delta } : {}), ...(calls?.length ? { toolCalls: calls } : {}) });
    if (choice?.finish_reason) finishReason = choice.finish_reason;
    if (chunk.usage) usage = chunk.usage;
  };
  const result = (): ChatResult => {
    const toolText = tools.map((t) => t.function.name + t.function.arguments).join('');
    return {
      content,
      promptTokens: usage?.prompt_tokens ?? countPromptTokens(req.messages),
      completionTokens: usage?.completion_tokens ?? countTokens(content + toolText),
      model,
      finishReason,
      ...(tools.length ? { toolCalls: tools.filter(Boolean) } : {}),
      usageReported: !!usage,
    };
  };
  return { add, result };
}
