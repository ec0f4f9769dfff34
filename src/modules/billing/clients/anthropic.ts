import Anthropic from '@anthropic-ai/sdk';

import type { ChatDelta, ChatMessage, ChatRequest, ChatResult } from '../llm.js';
import {
  finishReasonOf,
  toAnthropicConversation,
  toAnthropicToolChoice,
  toAnthropicTools,
  toolCallsOf,
  toolCallStreamer,
} from './anthropic-tools.js';
import { deadlineFor, withDeadline } from './errors.js';
import type { ProviderClient } from './provider-client.js';

export const ANTHROPIC_BASE_URL = 'https://api.anthropic.com';

export interface AnthropicClientOptions {
  name: string;
  apiKey: string;
  /** Another base URL (a proxy or gateway speaking Anthropic's API); default: Anthropic's. */
  baseURL?: string | null;
}

/**
 * Anthropic's Messages API shape: system text apart, then alternating user/assistant
 * turns (consecutive messages of one role are joined, as the API refuses repeats).
 */
export function toAnthropicMessages(messages: readonly ChatMessage[]): {
  system?: string;
  messages: { role: 'user' | 'assistant'; content: string }[];
} {
  const system = messages
    .filter((m) => m.role === 'system')
    .map((m) => m.content)
    .join('\n\n');
  const turns: { role: 'user' | 'assistant'; content: string }[] = [];
  for (const m of messages) {
    if (m.role === 'system') continue;
    const last = turns.at(-1);
    if (last?.role === m.role) last.content += `\n\n${m.content}`;
    else turns.push({ role: m.role, content: m.content });
  }
  return { ...(system ? { system } : {}), messages: turns };
}

/**
 * ANTHROPIC through the official SDK, streaming (`messages.stream`): text deltas as they
 * come, usage from the final message. Every option is explicit (no ANTHROPIC_*
 * environment variable applies) and the SDK does not retry.
 */
export function anthropicClient(opts: AnthropicClientOptions): ProviderClient {
  const client = new Anthropic({
    apiKey: opts.apiKey,
    authToken: null,
    baseURL: opts.baseURL ?? ANTHROPIC_BASE_URL,
    maxRetries: 0,
  });
  const deadline = deadlineFor(opts.name, opts.apiKey);

  return {
    chat(
      req: ChatRequest,
      onDelta?: (text: string) => void,
      onEvent?: (delta: ChatDelta) => void,
    ): Promise<ChatResult> {
      return withDeadline(deadline(req.timeoutMs, req.signal), async (signal) => {
        const pt = req.passThrough;
        const stop = pt?.stop === undefined ? undefined : Array.isArray(pt.stop) ? pt.stop : [pt.stop];
        // The gateway's callers' own messages (tool calls and results included) where given.
        const conversation = pt?.messages ? toAnthropicConversation(pt.messages) : toAnthropicMessages(req.messages);
        const toolChoice = pt?.tools?.length ? toAnthropicToolChoice(pt.toolChoice) : undefined;
        const stream = client.messages.stream(
          {
            model: req.model,
            max_tokens: req.maxTokens,
            ...conversation,
            ...(pt?.tools?.length ? { tools: toAnthropicTools(pt.tools) } : {}),
            ...(toolChoice ? { tool_choice: toolChoice } : {}),
            ...(pt?.temperature !== undefined ? { temperature: pt.temperature } : {}),
            ...(pt?.topP !== undefined ? { top_p: pt.topP } : {}),
            ...(stop ? { stop_sequences: stop } : {}),
          } as Anthropic.MessageStreamParams,
          { signal, timeout: req.timeoutMs, maxRetries: 0 },
        );
        stream.on('text', (delta) => {
          onDelta?.(delta);
          onEvent?.({ text: delta });
        });
        if (onEvent) stream.on('streamEvent', toolCallStreamer(onEvent));
        const final = await stream.finalMessage();
        const content = final.content.flatMap((b) => (b.type === 'text' ? [b.text] : [])).join('');
        const toolCalls = toolCallsOf(final.content);
        const u = final.usage;
        return {
          content,
          // Cached prompt tokens are prompt tokens too (billed at other rates we do not model).
          promptTokens: u.input_tokens + (u.cache_creation_input_tokens ?? 0) + (u.cache_read_input_tokens ?? 0),
          completionTokens: u.output_tokens,
          model: final.model ?? req.model,
          finishReason: finishReasonOf(final.stop_reason),
          ...(toolCalls.length ? { toolCalls } : {}),
          usageReported: true,
        };
      });
    },

    probe(timeoutMs: number): Promise<void> {
      return withDeadline(deadline(timeoutMs), async (signal) => {
        await client.models.list({ limit: 1 }, { signal, timeout: timeoutMs, maxRetries: 0 });
      });
    },
  };
}
