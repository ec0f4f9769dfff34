import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ConfirmTotpDocument, DisableTotpDocument, EnrollTotpDocument } from '../../generated/graphql.js';
import { codes, gql, ok } from '../../support/client.js';
import { login, totpCode } from '../../support/identity.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { createUser, firstAdmin, type TestUser } from '../../support/users.js';

let s: TestServer;
let admin: TestUser;
beforeAll(async () => {
  s = await startTestServer();
  admin = await firstAdmin(s);
});
afterAll(() => s?.close());

const enroll = async (u: TestUser) => (await ok(s.url, EnrollTotpDocument, {}, u.token)).enrollTotp;
const confirm = (u: TestUser, code: string) => gql(s.url, ConfirmTotpDocument, { input: { code } }, u.token);
const disable = (u: TestUser, code: string) => gql(s.url, DisableTotpDocument, { input: { code } }, u.token);

/** A user with TOTP enabled (confirmed with the code of the previous step, so the current one is still unused). */
async function userWithTotp() {
  const u = await createUser(s, admin);
  const { secret } = await enroll(u);
  expect((await confirm(u, await totpCode(secret, -1))).data).toEqual({ confirmTotp: true });
  return { u, secret };
}

describe('TOTP', () => {
  it('enrols with an otpauth URI, keeps the secret encrypted, and changes nothing until confirmed', async () => {
    const u = await createUser(s, admin);
    const { secret, otpauthUri } = await enroll(u);
    const uri = new URL(otpauthUri);
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.host).toBe('totp');
    expect(decodeURIComponent(uri.pathname)).toBe(`/Steward:${u.email}`);
    expect(uri.searchParams.get('secret')).toBe(secret);
    expect(uri.searchParams.get('issuer')).toBe('Steward');
    expect(secret).toMatch(/^[A-Z2-7]{32}$/); // 160 bits, base32

    const [row] = await s.sql<{ secret: string; totp_enabled: boolean }>(
      'SELECT totp_secret::text AS secret, totp_enabled FROM users WHERE id = $1',
      [u.id],
    );
    expect(row!.totp_enabled).toBe(false);
    expect(row!.secret).not.toContain(secret);
    // Not confirmed yet: the password alone still signs in.
    expect((await login(s, u.username, u.password)).errors).toBeUndefined();
  });

  it('confirms with a valid code only, and then requires a code at login', async () => {
    const u = await createUser(s, admin);
    const { secret } = await enroll(u);
    expect(codes(await confirm(u, '000000'))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await confirm(u, 'abc'))).toEqual(['BAD_USER_INPUT']);
    expect((await confirm(u, await totpCode(secret))).data).toEqual({ confirmTotp: true });

    const withoutCode = await login(s, u.username, u.password);
    expect(withoutCode.data).toBeNull();
    expect(withoutCode.errors![0]!.extensions).toEqual({ code: 'UNAUTHENTICATED', totpRequired: true });
    const withCode = await login(s, u.username, u.password, await totpCode(secret, 1));
    expect(withCode.errors).toBeUndefined();
    expect(withCode.data!.login.user.id).toBe(u.id);
  });

  it('asks for the code only after the right password', async () => {
    const { u } = await userWithTotp();
    const r = await login(s, u.username, 'not the password');
    expect(r.errors![0]).toMatchObject({
      message: 'Invalid login or password',
      extensions: { code: 'UNAUTHENTICATED' },
    });
    expect(r.errors![0]!.extensions).not.toHaveProperty('totpRequired');
  });

  it('accepts each code only once', async () => {
    const { u, secret } = await userWithTotp();
    const code = await totpCode(secret);
    expect((await login(s, u.username, u.password, code)).errors).toBeUndefined();
    const replay = await login(s, u.username, u.password, code);
    expect(codes(replay)).toEqual(['UNAUTHENTICATED']);
    expect(replay.data).toBeNull();
  });

  it('accepts the code of the previous and of the next 30-second step, not two steps away', async () => {
    const u = await createUser(s, admin);
    const { secret } = await enroll(u);
    expect(codes(await confirm(u, await totpCode(secret, -2)))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await confirm(u, await totpCode(secret, 2)))).toEqual(['BAD_USER_INPUT']);
    expect((await confirm(u, await totpCode(secret, -1))).data).toEqual({ confirmTotp: true });
    expect((await login(s, u.username, u.password, await totpCode(secret, 1))).errors).toBeUndefined();
  });

  it('refuses a code older than the last one used', async () => {
    const { u, secret } = await userWithTotp();
    expect((await login(s, u.username, u.password, await totpCode(secret, 1))).errors).toBeUndefined();
    // The current step's code is still within ±1 step, but comes before the one just used.
    expect(codes(await login(s, u.username, u.password, await totpCode(secret)))).toEqual(['UNAUTHENTICATED']);
  });

  it('counts wrong codes towards the lockout', async () => {
    const { u, secret } = await userWithTotp();
    for (let i = 0; i < 5; i++)
      expect(codes(await login(s, u.username, u.password, '000000'))).toEqual(['UNAUTHENTICATED']);
    const locked = await login(s, u.username, u.password, await totpCode(secret));
    expect(locked.errors![0]).toMatchObject({
      message: 'Invalid login or password',
      extensions: { code: 'UNAUTHENTICATED' },
    });
  });

  it('does not count the password-only step of a TOTP login as a failure', async () => {
    const { u, secret } = await userWithTotp();
    for (let i = 0; i < 4; i++) await login(s, u.username, 'not the password');
    for (let i = 0; i < 3; i++)
      expect((await login(s, u.username, u.password)).errors![0]!.extensions).toMatchObject({ totpRequired: true });
    expect((await login(s, u.username, u.password, await totpCode(secret))).errors).toBeUndefined();
  });

  it('refuses to enrol again while TOTP is enabled', async () => {
    const { u } = await userWithTotp();
    expect(codes(await gql(s.url, EnrollTotpDocument, {}, u.token))).toEqual(['CONFLICT']);
  });

  it('disables TOTP with a valid code only; the password alone then signs in', async () => {
    const { u, secret } = await userWithTotp();
    expect(codes(await disable(u, '000000'))).toEqual(['BAD_USER_INPUT']);
    expect((await disable(u, await totpCode(secret))).data).toEqual({ disableTotp: true });
    expect((await login(s, u.username, u.password)).errors).toBeUndefined();
    const [row] = await s.sql<{ totp_enabled: boolean; totp_secret: unknown }>(
      'SELECT totp_enabled, totp_secret FROM users WHERE id = $1',
      [u.id],
    );
    expect(row).toEqual({ totp_enabled: false, totp_secret: null });
  });
});
