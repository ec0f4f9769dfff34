import { describe, expect, it } from 'vitest';

import { costOf, formatMicros, percentOf, toMicros } from '../../src/modules/billing/money.js';
import { periodsAt } from '../../src/modules/billing/quota.service.js';
import { promptTokenBound } from '../../src/modules/billing/tokenizer.js';
import { classifyIntent, deviationDelta, GENERAL_CHAT } from '../../src/shared/intent-classifier.js';

describe('the intent classifier', () => {
  it('names the intent with the most cues, with a confidence that grows with unopposed cues', () => {
    expect(classifyIntent('Fix the crash: the stack trace shows a null error')).toEqual({
      intent: 'debugging',
      confidence: 0.857,
    }); // 6 cues, none for another intent
    expect(classifyIntent('Write unit tests with vitest for the parser').intent).toBe('testing');
    expect(classifyIntent('Write a poem and a song about the sea')).toEqual({
      intent: 'creative_writing',
      confidence: 0.5,
    }); // 2 cues against 1 (write: coding)
    expect(classifyIntent('Write a poem')).toEqual({ intent: 'coding', confidence: 0.333 }); // a tie goes to the vocabulary's order
  });

  it('answers the same for the same prompt, and general chat with low confidence when nothing matches', () => {
    expect(classifyIntent('Good morning, how are you?')).toEqual({ intent: GENERAL_CHAT, confidence: 0.2 });
    expect(classifyIntent('Deploy the docker container')).toEqual(classifyIntent('Deploy the docker container'));
  });

  it('moves the deviation score only for tasks that list allowed intents', () => {
    expect(deviationDelta([], { intent: 'personal', confidence: 0.9 })).toBe(0);
    expect(deviationDelta(['coding'], { intent: 'coding', confidence: 0.9 })).toBe(-1);
    expect(deviationDelta(['coding'], { intent: 'personal', confidence: 0.75 })).toBe(7.5);
  });
});

describe('money', () => {
  it('is exact decimal: parsed to micro-dollars and printed with six places', () => {
    expect(toMicros('12.5')).toBe(12_500_000n);
    expect(formatMicros(toMicros('0.000001'))).toBe('0.000001');
    expect(formatMicros(toMicros('0.1') + toMicros('0.2'))).toBe('0.300000');
    expect(() => toMicros('-1')).toThrow(/non-negative/);
    expect(() => toMicros('1.0000001')).toThrow(/6 decimal/);
  });

  it('prices tokens rounding up to the micro-dollar, never below the true cost', () => {
    expect(costOf(1500, toMicros('0.003'))).toBe(4500n); // a worked example of the pricing rule: $0.0045
    expect(costOf(1, toMicros('0.003'))).toBe(3n);
    expect(costOf(1, toMicros('0.0005'))).toBe(1n); // 0.5 micro-dollars rounds up
    expect(percentOf(toMicros('0.8'), toMicros('1'))).toBe(80);
  });

  it("bounds a prompt's tokens by its bytes plus per-message overhead", () => {
    expect(promptTokenBound([{ role: 'user', content: 'héllo' }])).toBe(3 + 6 + 4);
  });

  it('counts usage in UTC hours, days and months', () => {
    const p = periodsAt(new Date('2026-03-31T23:59:59.999Z'));
    expect(p.HOUR.toISOString()).toBe('2026-03-31T23:00:00.000Z');
    expect(p.DAY.toISOString()).toBe('2026-03-31T00:00:00.000Z');
    expect(p.MONTH.toISOString()).toBe('2026-03-01T00:00:00.000Z');
  });
});
