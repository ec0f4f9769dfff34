import { z } from 'zod';

import type { ChatMessage, MeteredResult } from '../billing/index.js';
import { parse, type GatewayChat } from './openai-format.js';

/**
 * Anthropic's Messages API in, translated to the gateway's one call shape (and the
 * OpenAI-format messages an OpenAI-compatible provider is sent), and the answer back in
 * Anthropic's shape: one gateway, any provider. Text, tools (tool_use / tool_result) and
 * system text are translated; images are passed to OpenAI providers as image_url parts.
 */
const Block = z.looseObject({ type: z.string() });
export const MessagesRequest = z.looseObject({
  model: z.string().min(1).max(256),
  max_tokens: z.number().int().positive(),
  messages: z
    .array(z.looseObject({ role: z.enum(['user', 'assistant']), content: z.union([z.string(), z.array(Block)]) }))
    .min(1)
    .max(10_000),
  system: z.union([z.string(), z.array(Block)]).nullish(),
  stream: z.boolean().nullish(),
  temperature: z.number().min(0).max(1).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  stop_sequences: z.array(z.string()).max(4).nullish(),
  tools: z
    .array(
      z.looseObject({
        name: z.string().min(1),
        description: z.string().optional(),
        input_schema: z.record(z.string(), z.unknown()).optional(),
      }),
    )
    .max(128)
    .nullish(),
  tool_choice: z.looseObject({ type: z.enum(['auto', 'any', 'tool', 'none']), name: z.string().optional() }).nullish(),
  metadata: z.looseObject({ user_id: z.string().max(256).nullish() }).nullish(),
});

type AnyBlock = {
  type: string;
  text?: string;
  id?: string;
  name?: string;
  input?: unknown;
  tool_use_id?: string;
  content?: unknown;
  source?: { type?: string; media_type?: string; data?: string; url?: string };
};

const blockText = (content: unknown): string =>
  typeof content === 'string'
    ? content
    : Array.isArray(content)
      ? (content as AnyBlock[]).map((b) => (b.type === 'text' ? (b.text ?? '') : JSON.stringify(b))).join('\n')
      : '';

type Messages = z.infer<typeof MessagesRequest>;
type Turn = Messages['messages'][number];

/** An assistant turn: its text, and its tool_use blocks as OpenAI tool calls. */
function assistantTurn(blocks: AnyBlock[]): Record<string, unknown> {
  const text = blocks
    .filter((b) => b.type === 'text')
    .map((b) => b.text ?? '')
    .join('');
  const calls = blocks
    .filter((b) => b.type === 'tool_use')
    .map((b) => ({
      id: b.id ?? '',
      type: 'function',
      function: { name: b.name ?? '', arguments: JSON.stringify(b.input ?? {}) },
    }));
  return { role: 'assistant', content: text || null, ...(calls.length ? { tool_calls: calls } : {}) };
}

const userPart = (b: AnyBlock) =>
  b.type === 'image' && b.source
    ? {
        type: 'image_url',
        image_url: {
          url: b.source.type === 'url' ? b.source.url : `data:${b.source.media_type};base64,${b.source.data}`,
        },
      }
    : { type: 'text', text: b.type === 'text' ? (b.text ?? '') : JSON.stringify(b) };

/** A user turn: tool results become tool messages (first, as OpenAI wants them right after the call), the rest one user message. */
function userTurn(blocks: AnyBlock[]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = blocks
    .filter((x) => x.type === 'tool_result')
    .map((b) => ({ role: 'tool', tool_call_id: b.tool_use_id ?? '', content: blockText(b.content) }));
  const parts = blocks.filter((b) => b.type !== 'tool_result').map(userPart);
  if (parts.length)
    out.push({
      role: 'user',
      content: parts.every((p) => p.type === 'text')
        ? parts.map((p) => (p as { text: string }).text).join('\n')
        : parts,
    });
  return out;
}

/** One Anthropic turn as the OpenAI-format messages it becomes. */
function openAiMessages(m: Turn): Record<string, unknown>[] {
  if (typeof m.content === 'string') return [{ role: m.role, content: m.content }];
  const blocks = m.content as AnyBlock[];
  return m.role === 'assistant' ? [assistantTurn(blocks)] : userTurn(blocks);
}

const openAiTools = (tools: Messages['tools']) =>
  tools?.map((t) => ({
    type: 'function',
    function: {
      name: t.name,
      ...(t.description ? { description: t.description } : {}),
      parameters: t.input_schema ?? { type: 'object', properties: {} },
    },
  }));

const openAiToolChoice = (tc: Messages['tool_choice']) =>
  !tc
    ? undefined
    : tc.type === 'any'
      ? 'required'
      : tc.type === 'tool'
        ? { type: 'function', function: { name: tc.name } }
        : tc.type;

export function fromMessages(body: unknown): GatewayChat {
  const r = parse(MessagesRequest, body);
  const system = blockText(r.system ?? '') || null;
  const openai: Record<string, unknown>[] = system ? [{ role: 'system', content: system }] : [];
  const messages: ChatMessage[] = system ? [{ role: 'system', content: system }] : [];
  for (const m of r.messages) {
    messages.push({ role: m.role, content: blockText(m.content) });
    openai.push(...openAiMessages(m));
  }
  const tools = openAiTools(r.tools);
  const toolChoice = openAiToolChoice(r.tool_choice);
  if (tools?.length) messages.unshift({ role: 'system', content: JSON.stringify(tools) });
  const lastUser = [...r.messages].reverse().find((m) => m.role === 'user');
  return {
    model: r.model,
    messages,
    prompt: lastUser ? blockText(lastUser.content) : '',
    system,
    maxTokens: r.max_tokens,
    stream: !!r.stream,
    includeUsage: true,
    passThrough: {
      messages: openai,
      ...(tools ? { tools } : {}),
      ...(toolChoice !== undefined ? { toolChoice } : {}),
      ...(r.temperature != null ? { temperature: r.temperature } : {}),
      ...(r.top_p != null ? { topP: r.top_p } : {}),
      ...(r.stop_sequences?.length ? { stop: r.stop_sequences } : {}),
      ...(r.metadata?.user_id ? { user: r.metadata.user_id } : {}),
    },
  };
}

export const stopReason = (finish: string | undefined) =>
  finish === 'length' ? 'max_tokens' : finish === 'tool_calls' ? 'tool_use' : 'end_turn';

const parseInput = (args: string): unknown => {
  try {
    return JSON.parse(args || '{}');
  } catch {
    return {};
  }
};

export function toolUseBlocks(m: MeteredResult) {
  return (m.toolCalls ?? []).map((t) => ({
    type: 'tool_use',
    id: t.id,
    name: t.function.name,
    input: parseInput(t.function.arguments),
  }));
}

export function message(id: string, model: string, m: MeteredResult) {
  return {
    id,
    type: 'message',
    role: 'assistant',
    model,
    content: [...(m.reply ? [{ type: 'text', text: m.reply }] : []), ...toolUseBlocks(m)],
    stop_reason: stopReason(m.finishReason),
    stop_sequence: null,
    usage: { input_tokens: m.promptTokens, output_tokens: m.completionTokens },
  };
}
