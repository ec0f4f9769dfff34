import OpenAI from 'openai';
import type { ChatRequest, ChatResult } from '../llm.js';
import { withDeadline } from './errors.js';
import { countPromptTokens, countTokens } from './local.js';
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
 * OPENAI and any OpenAI-compatible endpoint, through the official SDK. Every option is
 * explicit, so no OPENAI_* environment variable of the host can redirect or re-key a
 * call. No SDK retries: the metered pipeline decides about retries and fallbacks.
 *
 * Replies stream (`stream: true`, `stream_options.include_usage` so that the token
 * counts arrive in the final chunk). An endpoint that sends no usage gets its counts
 * estimated with Steward's tokenizer rule (see countTokens). OpenAI's own API is sent
 * `max_completion_tokens` (its newer models refuse `max_tokens`); other endpoints are
 * sent `max_tokens`, which all OpenAI-compatible servers understand.
 */
export function openAiClient(opts: OpenAiClientOptions): ProviderClient {
  const official = !opts.baseURL;
  const client = new OpenAI({
    apiKey: opts.apiKey ?? 'none',
    baseURL: opts.baseURL ?? OPENAI_BASE_URL,
    organization: null,
    project: null,
    webhookSecret: null,
    maxRetries: 0,
    ...(opts.apiKey ? {} : { defaultHeaders: { Authorization: null } }),
  });
  const deadline = (timeoutMs: number, signal?: AbortSignal) => ({ provider: opts.name, timeoutMs, signal, key: opts.apiKey });

  return {
    chat(req: ChatRequest, onDelta?: (text: string) => void): Promise<ChatResult> {
      return withDeadline(deadline(req.timeoutMs, req.signal), async (signal) => {
        const stream = await client.chat.completions.create(
          {
            model: req.model,
            messages: req.messages.map((m) => ({ role: m.role, content: m.content })),
            stream: true,
            stream_options: { include_usage: true },
            ...(official ? { max_completion_tokens: req.maxTokens } : { max_tokens: req.maxTokens }),
          },
          { signal, timeout: req.timeoutMs, maxRetries: 0 },
        );
        let content = '';
        let model = req.model;
        let usage: { prompt_tokens: number; completion_tokens: number } | null | undefined;
        for await (const chunk of stream) {
          if (chunk.model) model = chunk.model;
          const delta = chunk.choices?.[0]?.delta?.content;
          if (delta) {
            content += delta;
            onDelta?.(delta);
          }
          if (chunk.usage) usage = chunk.usage;
        }
        return {
          content,
          promptTokens: usage?.prompt_tokens ?? countPromptTokens(req.messages),
          completionTokens: usage?.completion_tokens ?? countTokens(content),
          model,
        };
      });
    },

    /** Lists the models: free, needs no model name, and proves both the endpoint and the key. */
    probe(timeoutMs: number): Promise<void> {
      return withDeadline(deadline(timeoutMs), async (signal) => {
        await client.models.list({ signal, timeout: timeoutMs, maxRetries: 0 });
      });
    },
  };
}
