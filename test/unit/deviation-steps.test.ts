import { describe, expect, it } from 'vitest';

import { deviationSteps } from '../../src/modules/billing/ledger.js';

/** The score as the full path moves it: one call after another, clamped to 0..100 at each. */
const stepwise = (score: number, cents: number) => Math.min(100, Math.max(0, Math.round(score * 100 + cents) / 100));

describe('deviationSteps: a batch of calls moves each user’s score as one call after another would', () => {
  it('gives every call the score before and after it, and the last call of each user the whole chain', () => {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let round = 0; round < 200; round++) {
      const users = ['a', 'b', 'c'];
      const calls = Array.from({ length: 1 + Math.floor(random() * 20) }, () => ({
        userId: users[Math.floor(random() * users.length)]!,
        deviationCents: random() < 0.3 ? -100 : Math.round(random() * 1000),
      }));
      const start = Object.fromEntries(users.map((u) => [u, Math.round(random() * 10_000) / 100]));
      const steps = deviationSteps(calls);
      const score = { ...start };
      calls.forEach((c, i) => {
        const before = score[c.userId]!;
        score[c.userId] = stepwise(before, c.deviationCents);
        expect(steps[i]!.before(start[c.userId]!)).toBe(before);
        expect(steps[i]!.after(start[c.userId]!)).toBe(score[c.userId]);
        // What the statement applies: min(hi, max(lo, start + shift)).
        const { lo, hi, shift } = steps[i]!.sql;
        expect(
          Math.min(Number(hi), Math.max(Number(lo), Math.round((start[c.userId]! + Number(shift)) * 100) / 100)),
        ).toBe(score[c.userId]);
      });
      // The statement moves each user's score once, by the chain of that user's last call.
      const last = new Map(calls.map((c, i) => [c.userId, i]));
      calls.forEach((c, i) => expect(steps[i]!.sql.last).toBe(last.get(c.userId) === i));
    }
  });
});
