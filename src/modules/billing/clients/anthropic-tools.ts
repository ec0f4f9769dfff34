import { BadInputError } from '../../../shared/errors.js';
import type { ChatDelta, ToolCall } from '../llm.js';

/**
 * The gateway's OpenAI-format pass-through (messages with tool calls and tool results,
 * `tools`, `tool_choice`) as Anthropic's Messages API wants it, and Anthropic's tool_use
 * blocks back as OpenAI tool calls — plain and streamed — so that an OpenAI client's
 * tool-calling conversation works the same whichever provider type serves the model.
 * (Anthropic-format callers are first translated to OpenAI's format by the gateway.)
 */

type Block = Record<string, unknown> & { type: string };
export interface AnthropicTurn {
  role: 'user' | 'assistant';
  content: Block[];
}

interface OpenAiPart {
  type?: string;
  text?: unknown;
  image_url?: { url?: string } | string;
}
interface OpenAiMessage {
  role?: string;
  content?: unknown;
  tool_calls?: { id?: string; function?: { name?: string; arguments?: string } }[];
  tool_call_id?: string;
}

const textOf = (content: unknown): string =>
  typeof content === 'string'
    ? content
    : Array.isArray(content)
      ? (content as OpenAiPart[])
          .map((p) => (p?.type === 'text' && typeof p.text === 'string' ? p.text : ''))
          .filter(Boolean)
          .join('\n')
      : '';

/** An image part: a data URL becomes base64 source, any other URL a url source. */
function imageBlock(part: OpenAiPart): Block {
  const url = typeof part.image_url === 'string' ? part.image_url : (part.image_url?.url ?? '');
  const data = /^data:([^;,]+);base64,(.*)$/s.exec(url);
  return data
    ? { type: 'image', source: { type: 'base64', media_type: data[1], data: data[2] } }
    : { type: 'image', source: { type: 'url', url } };
}

function userBlocks(content: unknown): Block[] {
  if (!Array.isArray(content)) {
    const text = textOf(content);
    return text ? [{ type: 'text', text }] : [];
  }
  return (content as OpenAiPart[]).flatMap((p): Block[] =>
    p?.type === 'image_url'
      ? [imageBlock(p)]
      : p?.type === 'text' && typeof p.text === 'string' && p.text
        ? [{ type: 'text', text: p.text }]
        : [],
  );
}

const parseInput = (args: string | undefined): unknown => {
  try {
    const v = JSON.parse(args || '{}');
    return v && typeof v === 'object' && !Array.isArray(v) ? v : { value: v };
  } catch {
    // Anthropic takes an object only; arguments that are not JSON are passed as they are.
    return { arguments: args };
  }
};

/**
 * OpenAI Chat Completions messages as Anthropic's system text and turns: system and
 * developer text apart; an assistant's tool calls as tool_use blocks; tool messages as
 * tool_result blocks of a user turn; consecutive turns of one role joined (the API wants
 * them alternating).
 */
export function toAnthropicConversation(messages: readonly unknown[]): { system?: string; messages: AnthropicTurn[] } {
  const system: string[] = [];
  const turns: AnthropicTurn[] = [];
  const push = (role: AnthropicTurn['role'], content: Block[]) => {
    if (!content.length) return;
    const last = turns.at(-1);
    if (last?.role === role) last.content.push(...content);
    else turns.push({ role, content });
  };
  for (const raw of messages) {
    const m = (raw ?? {}) as OpenAiMessage;
    switch (m.role) {
      case 'system':
      case 'developer': {
        const text = textOf(m.content);
        if (text) system.push(text);
        break;
      }
      case 'assistant': {
        const text = textOf(m.content);
        push('assistant', [
          ...(text ? [{ type: 'text', text }] : []),
          ...(m.tool_calls ?? []).map((c) => ({
            type: 'tool_use',
            id: c.id ?? '',
            name: c.function?.name ?? '',
            input: parseInput(c.function?.arguments),
          })),
        ]);
        break;
      }
      case 'tool':
        push('user', [{ type: 'tool_result', tool_use_id: m.tool_call_id ?? '', content: textOf(m.content) }]);
        break;
      default:
        push('user', userBlocks(m.content));
    }
  }
  return { ...(system.length ? { system: system.join('\n\n') } : {}), messages: turns };
}

/** OpenAI function tools as Anthropic tools (name, description, input_schema). */
export function toAnthropicTools(tools: readonly unknown[]): Block[] {
  return tools.map((raw, i) => {
    const t = (raw ?? {}) as {
      type?: string;
      function?: { name?: string; description?: string; parameters?: Record<string, unknown> };
    };
    if (t.type !== 'function' || !t.function?.name)
      throw new BadInputError(`tools.${i}: only function tools can be sent to an Anthropic model`, {
        field: `tools.${i}`,
      });
    return {
      // `type` is not sent: Anthropic reads a tool without one as a custom (client) tool.
      name: t.function.name,
      ...(t.function.description ? { description: t.function.description } : {}),
      input_schema: t.function.parameters ?? { type: 'object', properties: {} },
    } as unknown as Block;
  });
}

/** OpenAI's tool_choice as Anthropic's: auto, required → any, none, a named function → tool. */
export function toAnthropicToolChoice(choice: unknown): Block | undefined {
  if (choice === 'auto') return { type: 'auto' };
  if (choice === 'required') return { type: 'any' };
  if (choice === 'none') return { type: 'none' };
  const named = choice as { type?: string; function?: { name?: string } } | null | undefined;
  if (named?.type === 'function' && named.function?.name) return { type: 'tool', name: named.function.name };
  if (choice == null) return undefined;
  throw new BadInputError('tool_choice: auto, none, required or a named function', { field: 'tool_choice' });
}

/** Anthropic's stop reason as OpenAI's finish reason. */
export const finishReasonOf = (stop: string | null | undefined): string =>
  stop === 'tool_use' ? 'tool_calls' : stop === 'max_tokens' ? 'length' : 'stop';

/** The tool_use blocks of a final message as OpenAI tool calls. */
export function toolCallsOf(content: readonly { type: string; id?: string; name?: string; input?: unknown }[]) {
  return content
    .filter((b) => b.type === 'tool_use')
    .map((b): ToolCall => ({
      id: b.id ?? '',
      type: 'function',
      function: { name: b.name ?? '', arguments: JSON.stringify(b.input ?? {}) },
    }));
}

/**
 * Turns Anthropic's stream events into OpenAI's streamed tool-call fragments: the first
 * fragment of a call carries its index (among the calls), id and name, the next ones
 * pieces of its JSON arguments as they come.
 */
export function toolCallStreamer(emit: (d: ChatDelta) => void) {
  const byBlock = new Map<number, number>();
  const withArguments = new Set<number>();
  return (raw: { type: string }) => {
    const event = raw as {
      type: string;
      index?: number;
      content_block?: { type: string; id?: string; name?: string };
      delta?: { type?: string; partial_json?: string };
    };
    if (event.type === 'content_block_start' && event.content_block?.type === 'tool_use') {
      const index = byBlock.size;
      byBlock.set(event.index ?? 0, index);
      emit({
        toolCalls: [
          {
            index,
            id: event.content_block.id,
            type: 'function',
            function: { name: event.content_block.name, arguments: '' },
          },
        ],
      });
    } else if (event.type === 'content_block_delta' && event.delta?.type === 'input_json_delta') {
      const index = byBlock.get(event.index ?? 0);
      if (index !== undefined && event.delta.partial_json) {
        withArguments.add(index);
        emit({ toolCalls: [{ index, function: { arguments: event.delta.partial_json } }] });
      }
    } else if (event.type === 'content_block_stop') {
      // A call without arguments streams none: OpenAI clients then parse "{}", not "".
      const index = byBlock.get(event.index ?? 0);
      if (index !== undefined && !withArguments.has(index))
        emit({ toolCalls: [{ index, function: { arguments: '{}' } }] });
    }
  };
}
