import type pg from 'pg';
import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';

import type { Config } from '../../config.js';
import { sha256 } from '../../shared/crypto.js';
import { RateLimitedError } from '../../shared/errors.js';

/** The unauthenticated operations that cost a password hash or an e-mail. */
export type LimitedOperation = 'signUp' | 'login' | 'requestPasswordReset' | 'resetPassword';

/** Where every instance keeps the counters (one row per key, created by a migration). */
export const RATE_LIMIT_TABLE = 'auth_rate_limits';

const HOUR = 3600;

/**
 * Rate limits of sign-up, sign-in and password reset, counted in PostgreSQL so that all
 * instances share them (rate-limiter-flexible's Postgres store: one atomic upsert per
 * count). Keys are hashed: no e-mail or address is stored in the counters.
 *
 * - per IP address: AUTH_IP_LIMIT_PER_HOUR attempts of each operation;
 * - per account (the e-mail or login named): AUTH_ACCOUNT_LIMIT_PER_HOUR sign-ups,
 *   reset requests (mail sent) and resets;
 * - sign-in failures per account AND address: after LOGIN_IP_MAX_FAILURES the address is
 *   refused for that account for LOGIN_LOCK_SECONDS, well before the account itself locks
 *   (LOGIN_MAX_FAILURES, any addresses): one attacker cannot lock a victim out from one
 *   address, and an address throttled on one account does not affect anyone else.
 */
export class AuthLimits {
  private readonly perIp: Record<LimitedOperation, RateLimiterPostgres>;
  private readonly perAccount: Record<Exclude<LimitedOperation, 'login'>, RateLimiterPostgres>;
  private readonly loginFailures: RateLimiterPostgres;

  constructor(
    pool: pg.Pool,
    private readonly config: Config,
  ) {
    const limiter = (keyPrefix: string, points: number, duration: number) =>
      new RateLimiterPostgres({
        storeClient: pool,
        storeType: 'pool',
        tableName: RATE_LIMIT_TABLE,
        tableCreated: true,
        keyPrefix,
        points,
        duration,
      });
    const ip = (op: LimitedOperation) => limiter(`ip:${op}`, config.AUTH_IP_LIMIT_PER_HOUR, HOUR);
    const account = (op: LimitedOperation) => limiter(`account:${op}`, config.AUTH_ACCOUNT_LIMIT_PER_HOUR, HOUR);
    this.perIp = {
      signUp: ip('signUp'),
      login: ip('login'),
      requestPasswordReset: ip('requestPasswordReset'),
      resetPassword: ip('resetPassword'),
    };
    this.perAccount = {
      signUp: account('signUp'),
      requestPasswordReset: account('requestPasswordReset'),
      resetPassword: account('resetPassword'),
    };
    this.loginFailures = limiter('login:failures', config.LOGIN_IP_MAX_FAILURES, config.LOGIN_LOCK_SECONDS);
  }

  /**
   * Counts one attempt of `op` from `ip` (and on `account` when given), or throws
   * RATE_LIMITED with when to try again. The answer is the same whether or not the
   * account exists: the count is by what the client named.
   */
  async take(op: LimitedOperation, ip: string | null, account?: string | null): Promise<void> {
    if (ip) await this.consume(this.perIp[op], key(ip), `Too many ${op} attempts from this address`);
    if (account && op !== 'login')
      await this.consume(this.perAccount[op], key(account), `Too many ${op} attempts for this account`);
  }

  /** Whether sign-in failures of `account` from `ip` have reached LOGIN_IP_MAX_FAILURES. */
  async loginThrottled(account: string, ip: string | null): Promise<boolean> {
    const res = await this.loginFailures.get(key(account, ip));
    return (res?.consumedPoints ?? 0) >= this.config.LOGIN_IP_MAX_FAILURES;
  }

  async loginFailed(account: string, ip: string | null): Promise<void> {
    await this.loginFailures.penalty(key(account, ip), 1);
  }

  /** A successful sign-in from the address starts its count afresh. */
  async loginSucceeded(account: string, ip: string | null): Promise<void> {
    await this.loginFailures.delete(key(account, ip));
  }

  private async consume(limiter: RateLimiterPostgres, k: string, message: string): Promise<void> {
    try {
      await limiter.consume(k);
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) throw err; // the store failed: not the client's doing
      const retryAfterSeconds = Math.max(1, Math.ceil(err.msBeforeNext / 1000));
      throw new RateLimitedError(`${message}; try again in ${retryAfterSeconds} s`, { retryAfterSeconds });
    }
  }
}

const key = (...parts: (string | null)[]) => sha256(parts.map((p) => (p ?? '').trim().toLowerCase()).join('\u0001'));
