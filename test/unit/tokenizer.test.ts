import { describe, expect, it } from 'vitest';

import { costOf, toMicros } from '../../src/modules/billing/money.js';
import {
  completionTokens,
  promptReservation,
  promptTokenBound,
  promptTokens,
  tokenizerFor,
} from '../../src/modules/billing/tokenizer.js';

describe("reservations by the model's tokenizer", () => {
  const chat = [
    { role: 'system' as const, content: 'You are a helpful assistant.' },
    { role: 'user' as const, content: 'Summarise the quarterly report in three bullet points, please.' },
  ];

  it("knows OpenAI's encodings by model name, snapshots and provider prefixes included", () => {
    for (const m of [
      'gpt-4o',
      'gpt-4o-mini-2024-07-18',
      'gpt-4.1-nano',
      'gpt-5',
      'o3-mini',
      'openai/gpt-4o',
      'gpt-4-turbo',
      'gpt-3.5-turbo',
    ])
      expect(tokenizerFor(m)).not.toBeNull();
    for (const m of ['claude-sonnet-4', 'llama3', 'gpt-test', 'steward-local-1']) expect(tokenizerFor(m)).toBeNull();
  });

  it('counts text as text: a typed special token is not one', () => {
    expect(completionTokens('gpt-4o', 'hello <|endoftext|> world')).toBeGreaterThan(3);
  });

  it('reserves the exact count plus a token per message for a known model, the byte bound otherwise', () => {
    expect(promptReservation('gpt-4o', chat)).toBe(promptTokens('gpt-4o', chat) + chat.length);
    expect(promptReservation('claude-sonnet-4', chat)).toBe(promptTokenBound(chat));
    expect(promptReservation('gpt-4o', chat)).toBeLessThan(promptTokenBound(chat) / 3);
  });

  it('no longer refuses the affordable call the byte bound refused: $4 a day at $10 per 1k tokens', () => {
    const long = [{ role: 'user' as const, content: 'Please review the following module carefully. '.repeat(40) }];
    const price = toMicros('10');
    const limit = toMicros('4');
    const exact = costOf(promptReservation('gpt-4o', long) + 50, price);
    const bound = costOf(promptTokenBound(long) + 50, price);
    expect(exact).toBeLessThanOrEqual(limit);
    expect(bound).toBeGreaterThan(limit);
  });
});
