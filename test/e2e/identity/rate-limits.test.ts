import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ConfirmTotpDocument, EnrollTotpDocument } from '../../generated/graphql.js';
import { codes, ok, type GqlResult } from '../../support/client.js';
import { login, totpCode } from '../../support/identity.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { createUser, firstAdmin, unique, type TestUser } from '../../support/users.js';

/**
 * Rate limits of the unauthenticated operations, per IP address and per account, with
 * their counters in PostgreSQL (shared by every instance), and a lockout that an
 * attacker cannot turn against the account's owner. Other addresses are real: the
 * loopback network is 127.0.0.0/8, and requests leave from 127.0.0.2, .3, ….
 */
const LOGIN = `mutation ($input: LoginInput!) { login(input: $input) { accessToken } }`;

/** One GraphQL request over HTTP from the local address `from`. */
function gqlFrom<T = any>(
  from: string,
  url: string,
  query: string,
  variables: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<GqlResult<T>> {
  const body = JSON.stringify({ query, variables });
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        localAddress: from,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers },
      },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          const json = JSON.parse(text);
          resolve({ status: res.statusCode!, data: json.data, errors: json.errors, headers: new Headers() });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('per address and per account, across instances', () => {
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    const env = { AUTH_IP_LIMIT_PER_HOUR: '4', AUTH_ACCOUNT_LIMIT_PER_HOUR: '2' };
    a = await startTestServer({ env });
    b = await startTestServer({ env, shareDatabaseWith: a });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  const resetRequest = (s: TestServer, from: string, email: string) =>
    gqlFrom(from, s.url, `mutation ($input: RequestPasswordResetInput!) { requestPasswordReset(input: $input) }`, {
      input: { email },
    });

  it('counts password-reset mails per account on every instance, the same whether the account exists or not', async () => {
    for (const email of ['nobody@example.test', 'someone@example.test']) {
      expect((await resetRequest(a, '127.0.0.2', email)).data).toEqual({ requestPasswordReset: true });
      expect((await resetRequest(b, '127.0.0.3', email)).data).toEqual({ requestPasswordReset: true });
      const third = await resetRequest(a, '127.0.0.4', email);
      expect(codes(third)).toEqual(['RATE_LIMITED']);
      expect(third.errors![0]!.extensions!.retryAfterSeconds).toBeGreaterThan(3500);
    }
  });

  it('counts every operation per address, on every instance, and leaves other addresses alone', async () => {
    const from = '127.0.0.5';
    for (let i = 0; i < 2; i++)
      expect(
        codes(await gqlFrom(from, a.url, LOGIN, { input: { login: unique(), password: 'wrong password' } })),
      ).toEqual(['UNAUTHENTICATED']);
    for (let i = 0; i < 2; i++)
      expect(
        codes(await gqlFrom(from, b.url, LOGIN, { input: { login: unique(), password: 'wrong password' } })),
      ).toEqual(['UNAUTHENTICATED']);
    expect(
      codes(await gqlFrom(from, a.url, LOGIN, { input: { login: unique(), password: 'wrong password' } })),
    ).toEqual(['RATE_LIMITED']);
    expect(
      codes(await gqlFrom(from, b.url, LOGIN, { input: { login: unique(), password: 'wrong password' } })),
    ).toEqual(['RATE_LIMITED']);
    expect(
      codes(await gqlFrom('127.0.0.6', a.url, LOGIN, { input: { login: unique(), password: 'wrong password' } })),
    ).toEqual(['UNAUTHENTICATED']);

    const reset = `mutation ($input: ResetPasswordInput!) { resetPassword(input: $input) }`;
    for (let i = 0; i < 4; i++)
      expect(
        codes(await gqlFrom(from, a.url, reset, { input: { token: `rst_${i}`, newPassword: 'a brand new password' } })),
      ).toEqual(['BAD_USER_INPUT']);
    expect(
      codes(await gqlFrom(from, b.url, reset, { input: { token: 'rst_x', newPassword: 'a brand new password' } })),
    ).toEqual(['RATE_LIMITED']);

    const signUp = `mutation ($input: SignUpInput!) { signUp(input: $input) { accessToken } }`;
    const input = () => ({ email: `${unique()}@example.test`, username: unique(), password: 'correct horse battery' });
    for (let i = 0; i < 4; i++)
      expect(codes(await gqlFrom(from, i % 2 ? a.url : b.url, signUp, { input: input() }))).not.toContain(
        'RATE_LIMITED',
      );
    expect(codes(await gqlFrom(from, a.url, signUp, { input: input() }))).toEqual(['RATE_LIMITED']);
  });
});

describe('failed sign-ins', () => {
  let s: TestServer;
  let admin: TestUser;
  beforeAll(async () => {
    s = await startTestServer({ env: { LOGIN_IP_MAX_FAILURES: '3', LOGIN_MAX_FAILURES: '6' } });
    admin = await firstAdmin(s);
  });
  afterAll(() => s?.close());

  const lockState = async (id: string) =>
    (
      await s.sql<{ failed_login_attempts: number; locked_until: Date | null }>(
        'SELECT failed_login_attempts, locked_until FROM users WHERE id = $1',
        [id],
      )
    )[0]!;
  const attempt = (from: string, loginName: string, password: string, totp?: string, userAgent = 'attacker/1.0') =>
    gqlFrom(from, s.url, LOGIN, { input: { login: loginName, password, totpCode: totp } }, { 'user-agent': userAgent });

  it('stop an address on an account before the account locks: its owner, elsewhere, still signs in', async () => {
    const victim = await createUser(s, admin);
    for (let i = 0; i < 3; i++)
      expect(codes(await attempt('127.0.0.7', victim.username, `guess ${i}`))).toEqual(['UNAUTHENTICATED']);
    // The address is refused for this account, right password included, with the answer of any failure.
    const throttled = await attempt('127.0.0.7', victim.username, victim.password);
    expect(throttled.errors!.map((e) => e.message)).toEqual(['Invalid login or password']);
    expect((await lockState(victim.id)).locked_until).toBeNull();
    expect(
      (await attempt('127.0.0.8', victim.username, victim.password, undefined, 'victim/1.0')).errors,
    ).toBeUndefined();
    // ...and the same address may still sign in to another account.
    const other = await createUser(s, admin);
    expect((await attempt('127.0.0.7', other.username, other.password)).errors).toBeUndefined();
  });

  it('never lock out the owner with password and TOTP on a device that signed in before; a lock holds for everyone else', async () => {
    const victim = await createUser(s, admin);
    const { enrollTotp } = await ok(s.url, EnrollTotpDocument, {}, victim.token);
    await ok(s.url, ConfirmTotpDocument, { input: { code: await totpCode(enrollTotp.secret, -1) } }, victim.token);
    // The owner's device: a session from this address and user agent.
    expect(
      (
        await attempt(
          '127.0.0.9',
          victim.username,
          victim.password,
          await totpCode(enrollTotp.secret, 0),
          'victim-laptop/2.0',
        )
      ).errors,
    ).toBeUndefined();

    // A distributed attack: 3 guesses from each of two addresses lock the account.
    for (const from of ['127.0.0.10', '127.0.0.11'])
      for (let i = 0; i < 3; i++) await attempt(from, victim.username, `guess ${i}`);
    expect((await lockState(victim.id)).locked_until).not.toBeNull();

    // Password + code from an unknown device: refused (the lock holds).
    expect(
      codes(
        await attempt(
          '127.0.0.12',
          victim.username,
          victim.password,
          await totpCode(enrollTotp.secret, 1),
          'victim-laptop/2.0',
        ),
      ),
    ).toEqual(['UNAUTHENTICATED']);
    // Password without a valid code, or a wrong password, from the owner's device: refused.
    expect(
      codes(
        await attempt(
          '127.0.0.9',
          victim.username,
          'guess 9',
          await totpCode(enrollTotp.secret, 1),
          'victim-laptop/2.0',
        ),
      ),
    ).toEqual(['UNAUTHENTICATED']);
    expect(codes(await attempt('127.0.0.9', victim.username, victim.password, '000000', 'victim-laptop/2.0'))).toEqual([
      'UNAUTHENTICATED',
    ]);
    // Password + code from the owner's device: in, and the lock stays for everyone else.
    const owner = await attempt(
      '127.0.0.9',
      victim.username,
      victim.password,
      await totpCode(enrollTotp.secret, 1),
      'victim-laptop/2.0',
    );
    expect(owner.errors).toBeUndefined();
    expect(owner.data.login.accessToken).toBeTruthy();
    expect((await lockState(victim.id)).locked_until).not.toBeNull();
  });

  it('keep a lock for a password alone, whatever the device', async () => {
    const victim = await createUser(s, admin);
    expect((await login(s, victim.username, victim.password)).errors).toBeUndefined(); // a session from 127.0.0.1
    for (const from of ['127.0.0.13', '127.0.0.14'])
      for (let i = 0; i < 3; i++) await attempt(from, victim.username, `guess ${i}`);
    expect((await lockState(victim.id)).locked_until).not.toBeNull();
    expect(codes(await login(s, victim.username, victim.password))).toEqual(['UNAUTHENTICATED']);
  });
});
