import type { ChatDelta, ChatMessage, ChatRequest, ChatResult } from '../llm.js';
import { LlmCallError } from './errors.js';
import type { ProviderClient } from './provider-client.js';

/** The built-in model's name: what the seeded "Steward Local" provider serves. */
export const LOCAL_MODEL = 'steward-local-1';

/**
 * Steward's tokenizer rule, used by the LOCAL model and wherever a count must be
 * estimated (a provider that returns no usage, the pipeline's worst-case reservation):
 * one token per started group of four characters (UTF-16 code units), i.e.
 * `ceil(length / 4)`. Deterministic, and close to what BPE tokenizers give for English.
 */
export const countTokens = (text: string): number => Math.ceil(text.length / 4);

/** The prompt's tokens under the same rule: the sum over the messages' contents. */
export const countPromptTokens = (messages: readonly ChatMessage[]): number =>
  messages.reduce((n, m) => n + countTokens(m.content), 0);

const EXCERPT_WORDS = 24;

/**
 * The LOCAL model's reply: a pure function of the conversation, so the same messages
 * always get the same answer. It names itself, counts the words of the last user
 * message and quotes its beginning; it is a stand-in for development and demos, not an
 * assistant. Cut at a word boundary so that it never exceeds `maxTokens`.
 */
export function localReply(messages: readonly ChatMessage[], maxTokens: number): string {
  const last = [...messages].reverse().find((m) => m.role === 'user')?.content ?? '';
  const words = last.trim().split(/\s+/).filter(Boolean);
  const earlier = messages.filter((m) => m.role !== 'system').length - 1;
  const instructed = messages.some((m) => m.role === 'system');
  const excerpt = words.slice(0, EXCERPT_WORDS).join(' ') + (words.length > EXCERPT_WORDS ? ' …' : '');
  const full =
    words.length === 0
      ? `Steward Local (${LOCAL_MODEL}) received an empty message. This is Steward's built-in deterministic model for development and demos.`
      : `Steward Local (${LOCAL_MODEL}) read your message of ${words.length} word${words.length === 1 ? '' : 's'}` +
        `${earlier > 0 ? ` after ${earlier} earlier message${earlier === 1 ? '' : 's'}` : ''}` +
        `${instructed ? ", with the agent's instructions" : ''}: "${excerpt}". ` +
        `This is Steward's built-in deterministic model for development and demos: the same conversation always gets this same reply.`;
  return truncateToTokens(full, maxTokens);
}

function truncateToTokens(text: string, maxTokens: number): string {
  if (countTokens(text) <= maxTokens) return text;
  const limit = Math.max(0, maxTokens) * 4;
  const cut = text.slice(0, limit);
  const space = cut.lastIndexOf(' ');
  return (space > 0 ? cut.slice(0, space) : cut).trimEnd();
}

/**
 * The LOCAL client: no network, no key. The reply streams word by word (each chunk a
 * word with its trailing space, a macrotask apart so that listeners see a real stream),
 * and honours the caller's AbortSignal between chunks.
 */
export function localClient(): ProviderClient {
  return {
    async chat(
      req: ChatRequest,
      onDelta?: (text: string) => void,
      onEvent?: (delta: ChatDelta) => void,
    ): Promise<ChatResult> {
      const content = localReply(req.messages, req.maxTokens);
      const chunks = content.match(/\S+\s*/g) ?? [];
      for (const chunk of chunks) {
        if (req.signal?.aborted) throw new LlmCallError('ABORTED', 'The call to Steward Local was aborted');
        onDelta?.(chunk);
        onEvent?.({ text: chunk });
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      if (req.signal?.aborted) throw new LlmCallError('ABORTED', 'The call to Steward Local was aborted');
      return {
        content,
        promptTokens: countPromptTokens(req.messages),
        completionTokens: countTokens(content),
        model: req.model,
        finishReason: 'stop',
        usageReported: true,
      };
    },
    async probe() {
      // Always available: it runs in this process.
    },
  };
}
