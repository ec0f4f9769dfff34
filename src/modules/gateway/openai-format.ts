import { z } from 'zod';

import { BadInputError } from '../../shared/errors.js';
import type { ChatMessage, ChatPassThrough, MeteredResult, ToolCall } from '../billing/index.js';

/**
 * OpenAI's Chat Completions request, as far as Steward reads it: what it meters and
 * governs (the messages' text, the completion cap), and what it passes through to the
 * provider untouched (the messages themselves, tools, tool_choice, temperature, stop, user).
 */
const Message = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content: z.union([z.string(), z.array(z.looseObject({ type: z.string() })), z.null()]).optional(),
  tool_calls: z
    .array(
      z.looseObject({
        id: z.string(),
        type: z.string(),
        function: z.looseObject({ name: z.string(), arguments: z.string() }),
      }),
    )
    .optional(),
  tool_call_id: z.string().optional(),
});

export const ChatCompletionRequest = z.looseObject({
  model: z.string().min(1).max(256),
  messages: z.array(Message).min(1).max(10_000),
  max_tokens: z.number().int().positive().nullish(),
  max_completion_tokens: z.number().int().positive().nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  stop: z.union([z.string(), z.array(z.string()).max(4)]).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
  tools: z
    .array(z.looseObject({ type: z.string(), function: z.looseObject({ name: z.string().min(1) }) }))
    .max(128)
    .nullish(),
  tool_choice: z.union([z.enum(['none', 'auto', 'required']), z.looseObject({ type: z.string() })]).nullish(),
  user: z.string().max(256).nullish(),
  n: z.number().int().nullish(),
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;

/** Parses with zod and answers its first problem as BAD_USER_INPUT naming the field. */
export function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const field = issue.path.join('.') || 'body';
  throw new BadInputError(`${field}: ${issue.message}`, { field });
}

/** A message's text: a string, or its text parts joined (other parts, e.g. images, as their JSON: an over-estimate for the reservation). */
function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((p: { type?: string; text?: unknown }) =>
      p.type === 'text' && typeof p.text === 'string' ? p.text : JSON.stringify(p),
    )
    .join('\n');
}

export interface GatewayChat {
  model: string;
  /** Steward's own view of the messages: governance, the reservation, non-OpenAI providers. */
  messages: ChatMessage[];
  /** The last user message (what governance classifies and the prompt log records). */
  prompt: string;
  system: string | null;
  maxTokens: number | null;
  stream: boolean;
  includeUsage: boolean;
  passThrough: ChatPassThrough;
}

export function fromChatCompletion(body: unknown): GatewayChat {
  const r = parse(ChatCompletionRequest, body);
  if (r.n != null && r.n !== 1) throw new BadInputError('n: only 1 choice per request is supported', { field: 'n' });
  const messages: ChatMessage[] = r.messages.map((m) => {
    if (m.role === 'system' || m.role === 'developer') return { role: 'system', content: textOf(m.content) };
    if (m.role === 'tool')
      return { role: 'user', content: `[tool result ${m.tool_call_id ?? ''}] ${textOf(m.content)}` };
    if (m.role === 'assistant')
      return {
        role: 'assistant',
        content: textOf(m.content) + (m.tool_calls?.length ? `\n${JSON.stringify(m.tool_calls)}` : ''),
      };
    return { role: 'user', content: textOf(m.content) };
  });
  const lastUser = [...r.messages].reverse().find((m) => m.role === 'user');
  const system = messages
    .filter((m) => m.role === 'system')
    .map((m) => m.content)
    .join('\n\n');
  // Tools are part of what the provider counts as the prompt.
  if (r.tools?.length) messages.unshift({ role: 'system', content: JSON.stringify(r.tools) });
  return {
    model: r.model,
    messages,
    prompt: lastUser ? textOf(lastUser.content) : (messages.at(-1)?.content ?? ''),
    system: system || null,
    maxTokens: r.max_completion_tokens ?? r.max_tokens ?? null,
    stream: !!r.stream,
    includeUsage: !!r.stream_options?.include_usage,
    passThrough: {
      messages: r.messages,
      ...(r.tools ? { tools: r.tools } : {}),
      ...(r.tool_choice != null ? { toolChoice: r.tool_choice } : {}),
      ...(r.temperature != null ? { temperature: r.temperature } : {}),
      ...(r.top_p != null ? { topP: r.top_p } : {}),
      ...(r.stop != null ? { stop: r.stop } : {}),
      ...(r.user != null ? { user: r.user } : {}),
    },
  };
}

export const usageOf = (m: Pick<MeteredResult, 'promptTokens' | 'completionTokens'>) => ({
  prompt_tokens: m.promptTokens,
  completion_tokens: m.completionTokens,
  total_tokens: m.promptTokens + m.completionTokens,
});

export function chatCompletion(id: string, created: number, model: string, m: MeteredResult) {
  const tools: ToolCall[] | undefined = m.toolCalls?.length ? m.toolCalls : undefined;
  return {
    id,
    object: 'chat.completion',
    created,
    model,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: tools && !m.reply ? null : m.reply,
          refusal: null,
          ...(tools ? { tool_calls: tools } : {}),
        },
        finish_reason: m.finishReason ?? (tools ? 'tool_calls' : 'stop'),
        logprobs: null,
      },
    ],
    usage: usageOf(m),
  };
}

export function chunk(
  id: string,
  created: number,
  model: string,
  delta: Record<string, unknown>,
  finish: string | null,
  withUsage: boolean,
) {
  return {
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
    ...(withUsage ? { usage: null } : {}),
  };
}

export const EmbeddingRequest = z.looseObject({
  model: z.string().min(1).max(256),
  input: z.union([z.string(), z.array(z.string()).min(1).max(2048)]),
  dimensions: z.number().int().positive().nullish(),
  encoding_format: z.enum(['float', 'base64']).nullish(),
  user: z.string().max(256).nullish(),
});
