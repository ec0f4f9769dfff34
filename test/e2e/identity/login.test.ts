import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { BlockUserDocument, UnblockUserDocument, UpdateUserDocument } from '../../generated/graphql.js';
import { codes, gql, ok } from '../../support/client.js';
import { login, whoAmI } from '../../support/identity.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { createUser, firstAdmin, type TestUser } from '../../support/users.js';

let s: TestServer;
let admin: TestUser;
beforeAll(async () => {
  // The account lock on its own (every attempt here comes from one address, which
  // LOGIN_IP_MAX_FAILURES would otherwise stop first: see rate-limits.test.ts).
  s = await startTestServer({ env: { LOGIN_MAX_FAILURES: '5', LOGIN_IP_MAX_FAILURES: '1000' } });
  admin = await firstAdmin(s);
});
afterAll(() => s?.close());

const WRONG = 'not the password';
/** What a refused login looks like to the client, minus where it happened. */
const refusal = (r: Awaited<ReturnType<typeof login>>) => ({
  status: r.status,
  data: r.data,
  errors: r.errors?.map(({ message, extensions }) => ({ message, extensions })),
});
const INVALID = {
  status: 200,
  data: null,
  errors: [{ message: 'Invalid login or password', extensions: { code: 'UNAUTHENTICATED' } }],
};

const lockState = async (id: string) =>
  (
    await s.sql<{ failed_login_attempts: number; locked_until: Date | null }>(
      'SELECT failed_login_attempts, locked_until FROM users WHERE id = $1',
      [id],
    )
  )[0]!;
/** Audited refused logins of a user, by reason ("wrong password", "locked", …). */
const failures = async (id: string) =>
  (
    await s.sql<{ reason: string }>(
      `SELECT after->>'reason' AS reason FROM audit_events WHERE action = 'auth.login' AND outcome = 'FAILURE' AND entity_id = $1`,
      [id],
    )
  ).map((r) => r.reason);
const sessionsOf = async (id: string) => (await s.sql('SELECT id FROM sessions WHERE user_id = $1', [id])).length;

describe('login', () => {
  it('accepts the e-mail or the username, in any case', async () => {
    const u = await createUser(s, admin);
    for (const name of [u.email, u.username, u.email.toUpperCase(), ` ${u.username.toUpperCase()} `]) {
      const r = await login(s, name, u.password);
      expect(r.errors).toBeUndefined();
      expect(r.data!.login.user.id).toBe(u.id);
      expect((await whoAmI(s, r.data!.login.accessToken)).id).toBe(u.id);
    }
  });

  it('answers an unknown user, a wrong password and a locked account identically', async () => {
    const u = await createUser(s, admin);
    const unknown = refusal(await login(s, 'nobody-at-all@example.test', WRONG));
    const wrong = refusal(await login(s, u.username, WRONG));
    expect(unknown).toEqual(INVALID);
    expect(wrong).toEqual(unknown);
    await s.sql(`UPDATE users SET locked_until = now() + interval '1 minute' WHERE id = $1`, [u.id]);
    expect(refusal(await login(s, u.username, u.password))).toEqual(unknown);
  });

  it('locks the account for 15 minutes after 5 consecutive failures, refusing even the right password', async () => {
    const u = await createUser(s, admin);
    for (let i = 1; i <= 4; i++) {
      expect(refusal(await login(s, u.email, WRONG))).toEqual(INVALID);
      expect(await lockState(u.id)).toMatchObject({ failed_login_attempts: i, locked_until: null });
    }
    const before = Date.now();
    expect(refusal(await login(s, u.email, WRONG))).toEqual(INVALID);
    const { locked_until } = await lockState(u.id);
    expect(locked_until!.getTime() - before).toBeGreaterThan(15 * 60_000 - 5_000);
    expect(locked_until!.getTime() - before).toBeLessThan(15 * 60_000 + 5_000);

    expect(refusal(await login(s, u.email, u.password))).toEqual(INVALID);
    expect(refusal(await login(s, u.username, u.password))).toEqual(INVALID);
    expect((await failures(u.id)).sort()).toEqual(['locked', 'locked', ...Array(5).fill('wrong password')]);
  });

  it('lets the right password in again once the 15 minutes are over', async () => {
    const u = await createUser(s, admin);
    for (let i = 0; i < 5; i++) await login(s, u.username, WRONG);
    expect(refusal(await login(s, u.username, u.password))).toEqual(INVALID);
    await s.sql(`UPDATE users SET locked_until = now() - interval '1 second' WHERE id = $1`, [u.id]);
    expect((await login(s, u.username, u.password)).errors).toBeUndefined();
    expect(await lockState(u.id)).toMatchObject({ failed_login_attempts: 0, locked_until: null });
  });

  it('starts counting afresh when a lock has run out: 5 new failures lock again', async () => {
    const u = await createUser(s, admin);
    for (let i = 0; i < 5; i++) await login(s, u.username, WRONG);
    await s.sql(`UPDATE users SET locked_until = now() - interval '1 second' WHERE id = $1`, [u.id]);
    for (let i = 1; i <= 4; i++) {
      await login(s, u.username, WRONG);
      expect(await lockState(u.id)).toMatchObject({ failed_login_attempts: i, locked_until: null });
    }
    await login(s, u.username, WRONG);
    expect((await lockState(u.id)).locked_until).not.toBeNull();
    expect(refusal(await login(s, u.username, u.password))).toEqual(INVALID);
  });

  it('resets the failure count after a successful login', async () => {
    const u = await createUser(s, admin);
    for (let i = 0; i < 4; i++) await login(s, u.username, WRONG);
    expect((await login(s, u.username, u.password)).errors).toBeUndefined();
    expect((await lockState(u.id)).failed_login_attempts).toBe(0);
    for (let i = 0; i < 4; i++) await login(s, u.username, WRONG);
    expect((await login(s, u.username, u.password)).errors).toBeUndefined();
  });

  describe('many attempts at once', () => {
    const aliased = (loginName: string, passwords: string[]) =>
      `mutation { ${passwords.map((p, i) => `a${i + 1}: login(input: { login: ${JSON.stringify(loginName)}, password: ${JSON.stringify(p)} }) { accessToken }`).join('\n')} }`;

    it('charges every login sent as aliases in one request, and locks the account after 5 failures', async () => {
      const u = await createUser(s, admin);
      const tenWrong = aliased(
        u.username,
        Array.from({ length: 10 }, (_, i) => `${WRONG} ${i}`),
      );
      for (let request = 1; request <= 5; request++) {
        const r = await gql(s.url, tenWrong);
        expect(r.data).toBeNull();
        expect(codes(r)).toContain('UNAUTHENTICATED');
      }
      // Every password that was checked was charged to the account: no free guesses.
      const checked = (await failures(u.id)).filter((f) => f === 'wrong password').length;
      const { failed_login_attempts, locked_until } = await lockState(u.id);
      expect(failed_login_attempts).toBe(checked);
      expect(checked).toBeGreaterThanOrEqual(5);
      expect(locked_until!.getTime()).toBeGreaterThan(Date.now() + 14 * 60_000);
      expect(refusal(await login(s, u.username, u.password))).toEqual(INVALID);
    });

    it('never tries a right password hidden behind wrong ones in the same request', async () => {
      const u = await createUser(s, admin);
      const sessions = await sessionsOf(u.id);
      const r = await gql(
        s.url,
        aliased(u.username, [...Array.from({ length: 9 }, (_, i) => `${WRONG} ${i}`), u.password]),
      );
      expect(r.data).toBeNull();
      expect(await sessionsOf(u.id)).toBe(sessions);
      expect((await lockState(u.id)).failed_login_attempts).toBe((await failures(u.id)).length);
    });

    it('locks the account after 5 failures even when 20 wrong logins arrive at the same moment', async () => {
      const u = await createUser(s, admin);
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => login(s, u.username, `${WRONG} ${i}`)));
      for (const r of results) expect(refusal(r)).toEqual(INVALID);
      // At most LOGIN_MAX_FAILURES passwords were actually checked; the rest met the lock.
      const reasons = await failures(u.id);
      expect(reasons).toHaveLength(20);
      expect(reasons.filter((f) => f === 'wrong password')).toHaveLength(5);
      expect(refusal(await login(s, u.username, u.password))).toEqual(INVALID);
    });
  });

  it('rehashes the password at login when the argon2 parameters change', async () => {
    const u = await createUser(s, admin);
    const hashOf = async () =>
      (await s.sql<{ password_hash: string }>('SELECT password_hash FROM users WHERE id = $1', [u.id]))[0]!
        .password_hash;
    expect(await hashOf()).toMatch(/[$,]t=2[,$]/);
    const stronger = await startTestServer({ shareDatabaseWith: s, env: { ARGON2_TIME_COST: '3' } });
    try {
      const r = await login(stronger, u.username, u.password);
      expect(r.errors).toBeUndefined();
      expect(await hashOf()).toMatch(/[$,]t=3[,$]/);
      // The new hash still verifies, on either instance.
      expect((await login(s, u.username, u.password)).errors).toBeUndefined();
      expect((await login(stronger, u.username, u.password)).errors).toBeUndefined();
    } finally {
      await stronger.close();
    }
  });

  it('refuses a suspended user and a blocked user, and lets them in again once reinstated', async () => {
    const suspended = await createUser(s, admin);
    const blocked = await createUser(s, admin);
    await ok(s.url, UpdateUserDocument, { input: { id: suspended.id, status: 'SUSPENDED' } }, admin.token);
    await ok(s.url, BlockUserDocument, { input: { id: blocked.id, reason: 'abuse' } }, admin.token);

    for (const u of [suspended, blocked]) {
      const r = await login(s, u.username, u.password);
      expect(codes(r)).toEqual(['FORBIDDEN']);
      expect(r.data).toBeNull();
      // Without the right password nothing is revealed about the account's state.
      expect(refusal(await login(s, u.username, WRONG))).toEqual(INVALID);
    }

    await ok(s.url, UpdateUserDocument, { input: { id: suspended.id, status: 'ACTIVE' } }, admin.token);
    await ok(s.url, UnblockUserDocument, { id: blocked.id }, admin.token);
    for (const u of [suspended, blocked]) expect((await login(s, u.username, u.password)).errors).toBeUndefined();
  });

  it('refuses a password longer than 128 characters as bad input', async () => {
    const u = await createUser(s, admin);
    expect(codes(await login(s, u.username, 'x'.repeat(129)))).toEqual(['BAD_USER_INPUT']);
  });
});
