import argon2 from 'argon2';
import { afterEach, describe, expect, it, vi } from 'vitest';

import { PasswordHasher } from '../../src/modules/identity/password.js';
import { AppError } from '../../src/shared/errors.js';

const OWASP = { memoryCost: 19456, timeCost: 2, parallelism: 1 };

afterEach(() => vi.restoreAllMocks());

/**
 * Wraps argon2's hash and verify (the real ones still run) to record how many are in
 * flight at once. Without the hasher's limit, 10 calls started together are all in
 * flight together, so the maximum observed is what the limit allows.
 */
function observeArgon2() {
  let running = 0;
  let max = 0;
  let calls = 0;
  const track =
    <A extends unknown[], R>(real: (...a: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      calls++;
      max = Math.max(max, ++running);
      try {
        // Hold each call a little so that overlapping calls are certain to overlap.
        const [result] = await Promise.all([real(...args), new Promise((r) => setTimeout(r, 20))]);
        return result;
      } finally {
        running--;
      }
    };
  const realHash = argon2.hash.bind(argon2);
  const realVerify = argon2.verify.bind(argon2);
  vi.spyOn(argon2, 'hash').mockImplementation(track(realHash) as typeof argon2.hash);
  vi.spyOn(argon2, 'verify').mockImplementation(track(realVerify) as typeof argon2.verify);
  return {
    get max() {
      return max;
    },
    get calls() {
      return calls;
    },
  };
}

describe('PasswordHasher', () => {
  it('runs at most `concurrency` argon2 computations at once, hashes and verifications together', async () => {
    const hasher = new PasswordHasher(OWASP, 2);
    const seen = observeArgon2();
    const hashes = await Promise.all(Array.from({ length: 10 }, (_, i) => hasher.hash(`password number ${i}`)));
    expect(seen.calls).toBe(10);
    expect(seen.max).toBe(2);

    const checks = await Promise.all(
      hashes.flatMap((h, i) => [hasher.verify(h, `password number ${i}`), hasher.verify(h, 'wrong password')]),
    );
    expect(checks).toEqual(hashes.flatMap(() => [true, false]));
    expect(seen.calls).toBe(30);
    expect(seen.max).toBe(2);
  });

  it('does run computations in parallel up to the limit', async () => {
    const hasher = new PasswordHasher(OWASP, 4);
    const seen = observeArgon2();
    await Promise.all(Array.from({ length: 8 }, (_, i) => hasher.hash(`password number ${i}`)));
    expect(seen.max).toBe(4);
  });

  it('validate() accepts 8 to 128 characters and refuses 7 and 129 as BAD_USER_INPUT', () => {
    expect(() => PasswordHasher.validate('x'.repeat(8))).not.toThrow();
    expect(() => PasswordHasher.validate('x'.repeat(128))).not.toThrow();
    for (const length of [0, 7, 129, 100_000]) {
      let error: unknown;
      try {
        PasswordHasher.validate('x'.repeat(length), 'newPassword');
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(AppError);
      expect(error).toMatchObject({ code: 'BAD_USER_INPUT', details: { field: 'newPassword' } });
    }
  });

  it('refuses a bad length before any hashing, and verifies an over-long password as false without argon2', async () => {
    const hasher = new PasswordHasher(OWASP, 2);
    const seen = observeArgon2();
    await expect(hasher.hash('x'.repeat(7))).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    await expect(hasher.hash('x'.repeat(129))).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    expect(await hasher.verify('$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA', 'x'.repeat(1_000_000))).toBe(false);
    expect(seen.calls).toBe(0);
  });

  it('hashes with argon2id at the configured parameters, and asks for a rehash when they change', async () => {
    const hasher = new PasswordHasher(OWASP, 1);
    const hash = await hasher.hash('correct horse battery');
    expect(hash).toMatch(/^\$argon2id\$v=19\$/);
    for (const p of ['m=19456', 't=2', 'p=1']) expect(hash).toMatch(new RegExp(`[$,]${p}[,$]`));
    expect(hasher.needsRehash(hash)).toBe(false);
    expect(new PasswordHasher({ ...OWASP, timeCost: 3 }, 1).needsRehash(hash)).toBe(true);
    expect(new PasswordHasher({ ...OWASP, memoryCost: 65536 }, 1).needsRehash(hash)).toBe(true);
    expect(await hasher.verify(hash, 'correct horse battery')).toBe(true);
    expect(await hasher.verify('not a hash at all', 'correct horse battery')).toBe(false);
  });

  it('spends a verification on an unknown account (verifyDummy), also through the limit', async () => {
    const hasher = new PasswordHasher(OWASP, 1);
    const seen = observeArgon2();
    expect(await Promise.all([hasher.verifyDummy('guess one'), hasher.verifyDummy('guess two')])).toEqual([
      false,
      false,
    ]);
    expect(seen.max).toBe(1);
    expect(seen.calls).toBeGreaterThanOrEqual(3); // one dummy hash, then one verification each
  });
});
