import { describe, expect, it } from 'vitest';

import { GroupCommit } from '../../src/modules/billing/ledger.js';

/** A writer that records each batch it was given and answers when told to. */
function writer(fail: (n: number) => boolean = () => false) {
  const batches: number[][] = [];
  const pending: (() => void)[] = [];
  const write = (all: number[]) =>
    new Promise<string[]>((resolve, reject) => {
      batches.push(all);
      pending.push(() =>
        all.some(fail) ? reject(new Error(`bad in ${all.join(',')}`)) : resolve(all.map((n) => `ok ${n}`)),
      );
    });
  const answer = async () => {
    while (!pending.length) await new Promise((r) => setImmediate(r));
    pending.shift()!();
  };
  return { batches, write, answer };
}

describe('GroupCommit (the settlements and sent marks of concurrent calls)', () => {
  it('writes a settlement alone at once, and those arriving meanwhile together as the next batch', async () => {
    const w = writer();
    const batch = new GroupCommit(w.write);
    const first = batch.add(1);
    expect(w.batches).toEqual([[1]]);
    const rest = [2, 3, 4].map((n) => batch.add(n));
    expect(w.batches).toHaveLength(1); // waiting for the batch in flight
    await w.answer();
    expect(await first).toBe('ok 1');
    await w.answer();
    expect(await Promise.all(rest)).toEqual(['ok 2', 'ok 3', 'ok 4']);
    expect(w.batches).toEqual([[1], [2, 3, 4]]);
  });

  it("writes a failed batch's settlements one by one, so only the bad one fails", async () => {
    const w = writer((n) => n === 3);
    const batch = new GroupCommit(w.write);
    const first = batch.add(1);
    const rest = [2, 3, 4].map((n) => batch.add(n).catch((e: Error) => e.message));
    for (let i = 0; i < 5; i++) await w.answer(); // [1], [2,3,4] (fails), then [2], [3], [4]
    expect(await first).toBe('ok 1');
    expect(await Promise.all(rest)).toEqual(['ok 2', 'bad in 3', 'ok 4']);
    expect(w.batches).toEqual([[1], [2, 3, 4], [2], [3], [4]]);
  });
});
