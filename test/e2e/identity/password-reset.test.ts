import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { RequestPasswordResetDocument, ResetPasswordDocument } from '../../generated/graphql.js';
import { codes, gql } from '../../support/client.js';
import { closeCode, login, newSession, openSocket, serverForThisTest, sha256, whoAmI } from '../../support/identity.js';
import { startMailbox, type Mailbox } from '../../support/mailbox.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { createUser, firstAdmin, type TestUser } from '../../support/users.js';

let mailbox: Mailbox;
let s: TestServer;
let admin: TestUser;
beforeAll(async () => {
  mailbox = await startMailbox();
  s = await startTestServer({ env: { SMTP_URL: mailbox.url } });
  admin = await firstAdmin(s);
});
afterAll(async () => {
  await s?.close();
  await mailbox?.close();
});

const NEW_PASSWORD = 'a fresh passphrase';
const request = (server: TestServer, email: string) =>
  gql(server.url, RequestPasswordResetDocument, { input: { email } });
const reset = (token: string, newPassword = NEW_PASSWORD) =>
  gql(s.url, ResetPasswordDocument, { input: { token, newPassword } });

/** Asks for a reset and returns the token from the mail that arrives. */
async function mailedToken(u: TestUser): Promise<string> {
  expect((await request(s, u.email)).data).toEqual({ requestPasswordReset: true });
  const mail = await mailbox.next(u.email);
  const token = /\b(rst_[A-Za-z0-9_-]{20,})/.exec(mail.text)?.[1];
  if (!token) throw new Error(`no reset token in:\n${mail.text}`);
  return token;
}

describe('password reset', () => {
  it('answers true for an unknown e-mail too, and then sends nothing and stores nothing', async () => {
    const resetsBefore = (await s.sql('SELECT id FROM password_resets')).length;
    const r = await request(s, 'nobody-here@example.test');
    expect(r).toMatchObject({ status: 200, data: { requestPasswordReset: true } });
    expect(r.errors).toBeUndefined();
    // A known address answers exactly the same.
    const u = await createUser(s, admin);
    const known = await request(s, u.email);
    expect({ status: known.status, data: known.data, errors: known.errors }).toEqual({
      status: r.status,
      data: r.data,
      errors: r.errors,
    });
    await mailbox.next(u.email);
    expect(mailbox.received.some((m) => m.to.includes('nobody-here@example.test'))).toBe(false);
    expect((await s.sql('SELECT id FROM password_resets')).length).toBe(resetsBefore + 1);
  });

  it('resets the password with the mailed token, ends every session and closes their sockets', async () => {
    const u = await createUser(s, admin);
    const other = await newSession(s, u);
    const sock = openSocket(s, other.token);
    await sock.connected;

    const token = await mailedToken(u);
    // Stored as a hash only.
    const rows = await s.sql<{ row: string; token_hash: string }>(
      'SELECT row_to_json(p)::text AS row, token_hash FROM password_resets p WHERE user_id = $1',
      [u.id],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.row).not.toContain(token);
    expect(rows[0]!.token_hash).toBe(sha256(token));

    expect((await reset(token)).data).toEqual({ resetPassword: true });
    for (const t of [u.token, other.token]) expect((await whoAmI(s, t)).status).toBe(401);
    expect(await closeCode(sock)).toBe(4401);
    expect(codes(await login(s, u.username, u.password))).toEqual(['UNAUTHENTICATED']);
    expect((await login(s, u.username, NEW_PASSWORD)).errors).toBeUndefined();
  });

  it("keeps the user's API tokens unless asked to revoke them too", async () => {
    const u = await createUser(s, admin);
    const mint = async () =>
      (
        await gql(
          s.url,
          `mutation { createApiToken(input: { name: "cli" }) { token } }`,
          {},
          (await newSession(s, u)).token,
        )
      ).data!.createApiToken.token as string;
    const kept = await mint();
    expect((await reset(await mailedToken(u))).data).toEqual({ resetPassword: true });
    expect((await whoAmI(s, kept)).id).toBe(u.id);
    u.password = NEW_PASSWORD;
    const doomed = await mint();
    const r = await gql(s.url, ResetPasswordDocument, {
      input: { token: await mailedToken(u), newPassword: 'yet another passphrase', revokeApiTokens: true },
    });
    expect(r.data).toEqual({ resetPassword: true });
    for (const t of [kept, doomed]) expect((await whoAmI(s, t)).status).toBe(401);
  });

  it('accepts a reset token only once', async () => {
    const u = await createUser(s, admin);
    const token = await mailedToken(u);
    expect((await reset(token)).data).toEqual({ resetPassword: true });
    const again = await reset(token, 'yet another passphrase');
    expect(codes(again)).toEqual(['BAD_USER_INPUT']);
    expect((await login(s, u.username, NEW_PASSWORD)).errors).toBeUndefined();
    expect(codes(await login(s, u.username, 'yet another passphrase'))).toEqual(['UNAUTHENTICATED']);
  });

  it('refuses an expired reset token and leaves the password alone', async () => {
    const u = await createUser(s, admin);
    const token = await mailedToken(u);
    await s.sql(`UPDATE password_resets SET expires_at = now() - interval '1 second' WHERE token_hash = $1`, [
      sha256(token),
    ]);
    expect(codes(await reset(token))).toEqual(['BAD_USER_INPUT']);
    expect((await login(s, u.username, u.password)).errors).toBeUndefined();
    expect((await whoAmI(s, u.token)).id).toBe(u.id);
  });

  it('refuses a made-up token', async () => {
    expect(codes(await reset('rst_made-up-token-0000000000000000000000'))).toEqual(['BAD_USER_INPUT']);
  });

  it('refuses a new password outside 8 to 128 characters without using up the token', async () => {
    const u = await createUser(s, admin);
    const token = await mailedToken(u);
    expect(codes(await reset(token, 'short'))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await reset(token, 'x'.repeat(129)))).toEqual(['BAD_USER_INPUT']);
    expect((await reset(token)).data).toEqual({ resetPassword: true });
  });

  it('lifts a lockout once the password is reset', async () => {
    const u = await createUser(s, admin);
    for (let i = 0; i < 5; i++) await login(s, u.username, 'not the password');
    expect(codes(await login(s, u.username, u.password))).toEqual(['UNAUTHENTICATED']);
    expect((await reset(await mailedToken(u))).data).toEqual({ resetPassword: true });
    expect((await login(s, u.username, NEW_PASSWORD)).errors).toBeUndefined();
  });

  it('answers the same for known and unknown e-mails when the mail server is down', async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    const down = await serverForThisTest({ env: { SMTP_URL: `smtp://127.0.0.1:${closedPort}` } });
    const owner = await firstAdmin(down);
    const known = await request(down, owner.email);
    const unknown = await request(down, 'nobody-here@example.test');
    expect({ status: known.status, data: known.data, errors: known.errors }).toEqual({
      status: 200,
      data: { requestPasswordReset: true },
      errors: undefined,
    });
    expect({ status: unknown.status, data: unknown.data, errors: unknown.errors }).toEqual({
      status: 200,
      data: { requestPasswordReset: true },
      errors: undefined,
    });
  });
});
