import argon2 from 'argon2';
import pLimit, { type LimitFunction } from 'p-limit';

import { BadInputError } from '../../shared/errors.js';

export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 128;

export interface HashParams {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

/**
 * argon2id at or above OWASP's minimum (19 MiB, t=2, p=1). At most `concurrency`
 * hashes run at once: each takes `memoryCost` KiB, so 100 parallel logins wait in
 * line instead of exhausting memory. Unknown users are "verified" against a dummy
 * hash so that they take as long to refuse as a wrong password.
 */
export class PasswordHasher {
  private readonly limit: LimitFunction;
  private dummy?: Promise<string>;

  constructor(
    private readonly params: HashParams,
    concurrency: number,
  ) {
    this.limit = pLimit(concurrency);
  }

  /** Length 8–128, checked before any hashing (a 1 MB "password" never reaches argon2). */
  static validate(password: string, field = 'password'): void {
    if (password.length < PASSWORD_MIN || password.length > PASSWORD_MAX) {
      throw BadInputError.field(field, `must be ${PASSWORD_MIN} to ${PASSWORD_MAX} characters long`);
    }
  }

  /** Rejects (never throws synchronously) with BAD_USER_INPUT for a bad length, before any hashing. */
  async hash(password: string): Promise<string> {
    PasswordHasher.validate(password);
    return this.limit(() => argon2.hash(password, { type: argon2.argon2id, ...this.params }));
  }

  async verify(hash: string, password: string): Promise<boolean> {
    if (password.length > PASSWORD_MAX) return false;
    return this.limit(() => argon2.verify(hash, password).catch(() => false));
  }

  /** Spends the time of a verification, for logins of unknown accounts. */
  async verifyDummy(password: string): Promise<false> {
    this.dummy ??= this.hash('steward-dummy-password');
    await this.verify(await this.dummy, password.slice(0, PASSWORD_MAX));
    return false;
  }

  /** True when the stored hash was made with other parameters than today's. */
  needsRehash(hash: string): boolean {
    return argon2.needsRehash(hash, { ...this.params });
  }
}
