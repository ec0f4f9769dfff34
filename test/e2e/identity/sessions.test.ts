import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  ChangePasswordDocument,
  LogoutAllDocument,
  LogoutDocument,
  RefreshSessionDocument,
  RevokeSessionDocument,
  SessionDetailsDocument,
} from '../../generated/graphql.js';
import { codes, gql, ok } from '../../support/client.js';
import { closeCode, login, newSession, openSocket, sha256, whoAmI } from '../../support/identity.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { createUser, firstAdmin, type TestUser } from '../../support/users.js';

let s: TestServer;
let admin: TestUser;
beforeAll(async () => {
  s = await startTestServer();
  admin = await firstAdmin(s);
});
afterAll(() => s?.close());

const refresh = (refreshToken: string) => gql(s.url, RefreshSessionDocument, { input: { refreshToken } });
const REVOKED = { status: 401, codes: ['UNAUTHENTICATED'], id: undefined };
/** Moves a refresh token's rotation back past the reuse grace window (REFRESH_REUSE_GRACE_SECONDS, 10 s by default). */
const pastGrace = (refreshToken: string) =>
  s.sql(`UPDATE sessions SET rotated_at = rotated_at - interval '1 hour' WHERE refresh_token_hash = $1`, [
    sha256(refreshToken),
  ]);
const sessionIds = async (token: string) =>
  (await ok(s.url, SessionDetailsDocument, {}, token)).sessions.edges.map((e) => e.node.id);

describe('refreshSession', () => {
  it('rotates the refresh token: the new pair works and the old refresh token does not', async () => {
    const u = await createUser(s, admin);
    const r = await refresh(u.refreshToken);
    expect(r.errors).toBeUndefined();
    const next = r.data!.refreshSession;
    expect(next.refreshToken).not.toBe(u.refreshToken);
    expect(next.user.id).toBe(u.id);
    expect((await whoAmI(s, next.accessToken)).id).toBe(u.id);

    await pastGrace(u.refreshToken);
    const again = await refresh(u.refreshToken);
    expect(codes(again)).toEqual(['UNAUTHENTICATED']);
    expect(again.data).toBeNull();
  });

  it('refuses an unknown refresh token', async () => {
    expect(codes(await refresh('str_not-a-real-token'))).toEqual(['UNAUTHENTICATED']);
  });

  it('revokes the whole family when a rotated refresh token is reused, and nothing else', async () => {
    const u = await createUser(s, admin);
    const elsewhere = await newSession(s, u);
    const first = (await refresh(u.refreshToken)).data!.refreshSession;
    const second = (await refresh(first.refreshToken)).data!.refreshSession;
    const sock = openSocket(s, second.accessToken);
    await sock.connected;
    expect((await whoAmI(s, second.accessToken)).id).toBe(u.id);

    // Someone replays the stolen first refresh token, after the grace window.
    await pastGrace(first.refreshToken);
    expect(codes(await refresh(first.refreshToken))).toEqual(['UNAUTHENTICATED']);

    expect(codes(await refresh(second.refreshToken))).toEqual(['UNAUTHENTICATED']);
    expect(await whoAmI(s, second.accessToken)).toEqual(REVOKED);
    expect(await closeCode(sock)).toBe(4401);
    // Another login of the same user is another family: untouched.
    expect((await whoAmI(s, elsewhere.token)).id).toBe(u.id);
    expect((await refresh(elsewhere.refreshToken)).errors).toBeUndefined();
  });

  it('answers concurrent refreshes with the same token (two tabs) with one and the same successor, and keeps the family', async () => {
    const u = await createUser(s, admin);
    for (let round = 0; round < 3; round++) {
      const { refreshToken } = await newSession(s, u);
      const results = await Promise.all(Array.from({ length: 5 }, () => refresh(refreshToken)));
      expect(results.flatMap(codes)).toEqual([]);
      const successors = new Set(results.map((r) => r.data!.refreshSession.refreshToken));
      expect(successors.size).toBe(1);
      for (const r of results) expect((await whoAmI(s, r.data!.refreshSession.accessToken)).id).toBe(u.id);
      // The successor still rotates normally: nobody was logged out.
      expect((await refresh([...successors][0]!)).errors).toBeUndefined();
      // One successor, never two: the family holds the old session and exactly one new one.
      const family = await s.sql(
        `SELECT id FROM sessions WHERE family_id = (SELECT family_id FROM sessions WHERE refresh_token_hash = $1)`,
        [sha256(refreshToken)],
      );
      expect(family).toHaveLength(3);
    }
  });

  it('within the grace window answers a rotated token again with its successor; after it, the replay ends the family', async () => {
    const u = await createUser(s, admin);
    const next = (await refresh(u.refreshToken)).data!.refreshSession;
    const again = await refresh(u.refreshToken);
    expect(again.errors).toBeUndefined();
    expect(again.data!.refreshSession.refreshToken).toBe(next.refreshToken);
    expect((await whoAmI(s, again.data!.refreshSession.accessToken)).id).toBe(u.id);

    // Once the successor itself was rotated, the grace no longer applies: that is reuse.
    const third = (await refresh(next.refreshToken)).data!.refreshSession;
    expect(codes(await refresh(u.refreshToken))).toEqual(['UNAUTHENTICATED']);
    expect(await whoAmI(s, third.accessToken)).toEqual(REVOKED);

    // After the window, a replay ends the family, its newest token included.
    const v = await createUser(s, admin);
    const vNext = (await refresh(v.refreshToken)).data!.refreshSession;
    await pastGrace(v.refreshToken);
    expect(codes(await refresh(v.refreshToken))).toEqual(['UNAUTHENTICATED']);
    expect(await whoAmI(s, vNext.accessToken)).toEqual(REVOKED);
    expect(codes(await refresh(vNext.refreshToken))).toEqual(['UNAUTHENTICATED']);
  });
});

describe('logout and sessions', () => {
  it('ends the calling session on logout: its access token then gets 401 and its refresh token fails', async () => {
    const u = await createUser(s, admin);
    const other = await newSession(s, u);
    expect(await ok(s.url, LogoutDocument, {}, u.token)).toEqual({ logout: true });

    expect(await whoAmI(s, u.token)).toEqual(REVOKED);
    expect(codes(await refresh(u.refreshToken))).toEqual(['UNAUTHENTICATED']);
    expect((await whoAmI(s, other.token)).id).toBe(u.id);
  });

  it('ends every session of the caller on logoutAll, and closes their sockets', async () => {
    const u = await createUser(s, admin);
    const bystander = await createUser(s, admin);
    const a = await newSession(s, u);
    const b = await newSession(s, u);
    const sock = openSocket(s, b.token);
    await sock.connected;

    expect(await ok(s.url, LogoutAllDocument, {}, a.token)).toEqual({ logoutAll: 3 });
    for (const token of [u.token, a.token, b.token]) expect(await whoAmI(s, token)).toEqual(REVOKED);
    for (const t of [u.refreshToken, a.refreshToken, b.refreshToken])
      expect(codes(await refresh(t))).toEqual(['UNAUTHENTICATED']);
    expect(await closeCode(sock)).toBe(4401);
    expect((await whoAmI(s, bystander.token)).id).toBe(bystander.id);
  });

  it('lists the open sessions with their ip and user agent, not the ended or rotated ones', async () => {
    const u = await createUser(s, admin);
    await newSession(s, u, { 'user-agent': 'StewardPhone/1.0' });
    const laptop = await newSession(s, u, { 'user-agent': 'StewardLaptop/2.0' });
    await ok(s.url, LogoutDocument, {}, laptop.token);
    const rotated = await gql(s.url, RefreshSessionDocument, { input: { refreshToken: u.refreshToken } }, undefined, {
      'user-agent': 'StewardBrowser/3.0',
    });
    const browser = rotated.data!.refreshSession;

    const list = (await ok(s.url, SessionDetailsDocument, {}, browser.accessToken)).sessions;
    expect(list.totalCount).toBe(2);
    expect(list.edges.map((e) => e.node.userAgent).sort()).toEqual(['StewardBrowser/3.0', 'StewardPhone/1.0']);
    for (const { node } of list.edges) {
      expect(node).toMatchObject({ ip: '127.0.0.1', revokedAt: null });
      expect(new Date(node.expiresAt).getTime()).toBeGreaterThan(Date.now());
    }
  });

  it('ends one chosen session with revokeSession and leaves the others', async () => {
    const u = await createUser(s, admin);
    const other = await newSession(s, u, { 'user-agent': 'OtherDevice' });
    const list = (await ok(s.url, SessionDetailsDocument, {}, u.token)).sessions.edges;
    const target = list.find((e) => e.node.userAgent === 'OtherDevice')!.node.id;

    expect(await ok(s.url, RevokeSessionDocument, { id: target }, u.token)).toEqual({ revokeSession: true });
    expect(await whoAmI(s, other.token)).toEqual(REVOKED);
    expect((await whoAmI(s, u.token)).id).toBe(u.id);
    expect(await sessionIds(u.token)).not.toContain(target);
  });

  it("does not let a user revoke someone else's session", async () => {
    const u = await createUser(s, admin);
    const victim = await createUser(s, admin);
    const [victimSession] = await sessionIds(victim.token);
    expect(await ok(s.url, RevokeSessionDocument, { id: victimSession }, u.token)).toEqual({ revokeSession: false });
    expect((await whoAmI(s, victim.token)).id).toBe(victim.id);
  });

  it("lets an admin revoke anyone's session, which closes that session's socket", async () => {
    const u = await createUser(s, admin);
    const sock = openSocket(s, u.token);
    await sock.connected;
    const [session] = await sessionIds(u.token);
    expect(await ok(s.url, RevokeSessionDocument, { id: session }, admin.token)).toEqual({ revokeSession: true });
    expect(await whoAmI(s, u.token)).toEqual(REVOKED);
    expect(await closeCode(sock)).toBe(4401);
  });
});

describe('changePassword', () => {
  it("ends the caller's other sessions and their sockets, and keeps the caller's own", async () => {
    const u = await createUser(s, admin);
    const other = await newSession(s, u);
    const mine = openSocket(s, u.token);
    const theirs = openSocket(s, other.token);
    await Promise.all([mine.connected, theirs.connected]);

    const r = await ok(
      s.url,
      ChangePasswordDocument,
      { input: { currentPassword: u.password, newPassword: 'a brand new passphrase' } },
      u.token,
    );
    expect(r).toEqual({ changePassword: true });

    expect(await whoAmI(s, other.token)).toEqual(REVOKED);
    expect(codes(await refresh(other.refreshToken))).toEqual(['UNAUTHENTICATED']);
    expect(await closeCode(theirs)).toBe(4401);
    expect((await whoAmI(s, u.token)).id).toBe(u.id);
    await mine.staysOpen(200);
    expect((await refresh(u.refreshToken)).errors).toBeUndefined();

    expect(codes(await login(s, u.username, u.password))).toEqual(['UNAUTHENTICATED']);
    expect((await login(s, u.username, 'a brand new passphrase')).errors).toBeUndefined();
  });

  it('refuses a wrong current password and a new password outside 8 to 128 characters', async () => {
    const u = await createUser(s, admin);
    const other = await newSession(s, u);
    const change = (currentPassword: string, newPassword: string) =>
      gql(s.url, ChangePasswordDocument, { input: { currentPassword, newPassword } }, u.token);
    expect(codes(await change('wrong current password', 'a brand new passphrase'))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await change(u.password, 'short'))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await change(u.password, 'x'.repeat(129)))).toEqual(['BAD_USER_INPUT']);
    // Nothing changed: the old password and the other session still work.
    expect((await login(s, u.username, u.password)).errors).toBeUndefined();
    expect((await whoAmI(s, other.token)).id).toBe(u.id);
  });
});

describe('access tokens', () => {
  it('refuses a tampered or foreign access token with 401', async () => {
    const u = await createUser(s, admin);
    const [header, payload, signature] = u.token.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
    const forged = [
      header,
      Buffer.from(JSON.stringify({ ...claims, sub: admin.id })).toString('base64url'),
      signature,
    ].join('.');
    expect(await whoAmI(s, forged)).toEqual(REVOKED);
    expect(await whoAmI(s, 'not-a-jwt')).toEqual(REVOKED);
    expect((await gql(s.url, '{ me { id } }', {}, undefined, { authorization: 'Basic abc' })).status).toBe(401);
  });
});
