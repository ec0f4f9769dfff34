import { countTokens as cl100k } from 'gpt-tokenizer/encoding/cl100k_base';
import { countTokens as o200k } from 'gpt-tokenizer/encoding/o200k_base';

import { countTokens as stewardRule } from './clients/local.js';
import type { ChatMessage } from './llm.js';

/**
 * Token counts with the model's real tokenizer where one is known: OpenAI's BPE
 * encodings through `gpt-tokenizer` (pure TypeScript, no native or WASM build, exact
 * ports of tiktoken's o200k_base and cl100k_base, kept up to date with OpenAI's models).
 * For every other model the reservation keeps the worst-case bound (a token covers at
 * least one byte), so no budget can be over-spent by a tokenizer Steward does not know.
 */
type Counter = (text: string) => number;

// Text is counted as text: "<|endoftext|>" typed by a user is not a special token to the provider either.
const AS_TEXT = { allowedSpecial: new Set<string>(), disallowedSpecial: new Set<string>() };
const O200K: Counter = (t) => o200k(t, AS_TEXT);
const CL100K: Counter = (t) => cl100k(t, AS_TEXT);

/** The tokenizer of a model by its name (a provider's snapshot names included), or null when unknown. */
export function tokenizerFor(model: string): Counter | null {
  const m = model.toLowerCase().replace(/^.*\//, '');
  if (/^(gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|gpt-oss|o1|o3|o4)/.test(m)) return O200K;
  if (/^(gpt-4|gpt-3\.5|text-embedding-3|text-embedding-ada-002)/.test(m)) return CL100K;
  return null;
}

/** OpenAI's chat format: 3 tokens per message around its content, and 3 that prime the reply. */
const PER_MESSAGE = 3;
const PER_REPLY = 3;

/**
 * The prompt tokens a provider counts for `messages`: exact for a known tokenizer (what a
 * call that failed after streaming is charged), Steward's 4-characters rule otherwise.
 */
export function promptTokens(model: string, messages: readonly ChatMessage[]): number {
  const count = tokenizerFor(model);
  if (!count) return messages.reduce((n, m) => n + stewardRule(m.content), 0);
  return messages.reduce((n, m) => n + count(m.content) + PER_MESSAGE, PER_REPLY);
}

/**
 * An upper bound of a prompt's tokens for any BPE tokenizer (a token covers at least one
 * byte), plus chat-format overhead per message: the reservation must never be below
 * what the provider will count, or a budget could be over-spent.
 */
export function promptTokenBound(messages: readonly ChatMessage[]): number {
  return messages.reduce((n, m) => n + Buffer.byteLength(m.content) + 4, 3);
}

/**
 * What to reserve for the prompt: the exact count plus one token per message of margin
 * (names, tool definitions' framing) for a known tokenizer; for an unknown one the
 * worst-case bound.
 */
export function promptReservation(model: string, messages: readonly ChatMessage[]): number {
  if (!tokenizerFor(model)) return promptTokenBound(messages);
  return promptTokens(model, messages) + messages.length;
}

/** A completion's tokens (what was streamed before a failure), by the model's tokenizer or Steward's rule. */
export function completionTokens(model: string, text: string): number {
  return (tokenizerFor(model) ?? stewardRule)(text);
}
