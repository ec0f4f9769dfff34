import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  BlockUserDocument,
  ChangePasswordDocument,
  CreateApiTokenDocument,
  CreateInvitationDocument,
  CreateServiceTokenDocument,
  LogoutDocument,
  MeDocument,
  RevokeInvitationDocument,
  UnblockUserDocument,
  UpdateMeDocument,
  UpdateUserDocument,
  UserDocument,
  UsersDocument,
  type UserWhere,
} from '../../generated/graphql.js';
import { codes, gql, ok, type GqlResult } from '../../support/client.js';
import { closeCode, invitation, login, openSocket, serverForThisTest, whoAmI } from '../../support/identity.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { createUser, firstAdmin, unique, type TestUser } from '../../support/users.js';

/** Service tokens must expire. */
const SOON = new Date(Date.now() + 24 * 3600_000).toISOString();

let s: TestServer;
let admin: TestUser;
beforeAll(async () => {
  s = await startTestServer();
  admin = await firstAdmin(s);
});
afterAll(() => s?.close());

const REVOKED = { status: 401, codes: ['UNAUTHENTICATED'], id: undefined };
const users = (where: UserWhere, first?: number, after?: string, token = admin.token) =>
  ok(s.url, UsersDocument, { where, first, after }, token);
const usernames = async (where: UserWhere) => (await users(where)).users.edges.map((e) => e.node.username).sort();
const updateUser = (
  input: {
    id: string;
    role?: 'ADMIN' | 'USER' | 'OBSERVER';
    status?: 'ACTIVE' | 'INACTIVE' | 'SUSPENDED';
    tier?: 'BASIC' | 'PREMIUM' | 'VIP';
  },
  token = admin.token,
  server = s,
) => gql(server.url, UpdateUserDocument, { input }, token);

/** Users whose names carry `tag`, so that a search finds exactly them. */
const tagged = (tag: string, role: 'USER' | 'OBSERVER' | 'ADMIN' = 'USER') =>
  createUser(s, admin, role, { name: `${tag} ${unique('n')}` });

describe('the users connection', () => {
  it('filters by role, status, tier, blocked and text search', async () => {
    const tag = unique('team');
    const [plain, observer, vip, suspended, blocked] = [
      await tagged(tag),
      await tagged(tag, 'OBSERVER'),
      await tagged(tag),
      await tagged(tag),
      await tagged(tag),
    ];
    await ok(s.url, UpdateUserDocument, { input: { id: vip.id, tier: 'VIP' } }, admin.token);
    await ok(s.url, UpdateUserDocument, { input: { id: suspended.id, status: 'SUSPENDED' } }, admin.token);
    await ok(s.url, BlockUserDocument, { input: { id: blocked.id, reason: 'spam' } }, admin.token);
    const names = (...us: TestUser[]) => us.map((u) => u.username).sort();

    expect(await usernames({ search: tag })).toEqual(names(plain, observer, vip, suspended, blocked));
    expect(await usernames({ search: tag.toUpperCase() })).toEqual(names(plain, observer, vip, suspended, blocked));
    expect(await usernames({ search: tag, role: 'OBSERVER' })).toEqual(names(observer));
    expect(await usernames({ search: tag, role: 'USER', tier: 'BASIC', status: 'ACTIVE', isBlocked: false })).toEqual(
      names(plain),
    );
    expect(await usernames({ search: tag, tier: 'VIP' })).toEqual(names(vip));
    expect(await usernames({ search: tag, status: 'SUSPENDED' })).toEqual(names(suspended));
    expect(await usernames({ search: tag, isBlocked: true })).toEqual(names(blocked));
    // The search matches the e-mail and the username too.
    expect(await usernames({ search: vip.email })).toEqual(names(vip));
    expect(await usernames({ search: plain.username.slice(2) })).toEqual(names(plain));
    // LIKE wildcards in the search are taken literally.
    expect(await usernames({ search: `${tag}%` })).toEqual([]);
    expect((await users({ search: tag, isBlocked: true })).users.edges[0]!.node).toMatchObject({
      id: blocked.id,
      isBlocked: true,
    });
  });

  it('pages with first and after, and counts every match in totalCount', async () => {
    const tag = unique('page');
    const created = [];
    for (let i = 0; i < 5; i++) created.push(await tagged(tag));
    const seen: string[] = [];
    let after: string | undefined;
    const pages: boolean[] = [];
    for (;;) {
      const page = (await users({ search: tag }, 2, after)).users;
      expect(page.totalCount).toBe(5);
      expect(page.edges.length).toBeLessThanOrEqual(2);
      seen.push(...page.edges.map((e) => e.node.id));
      pages.push(page.pageInfo.hasNextPage);
      expect(page.pageInfo.endCursor).toBe(page.edges.at(-1)?.cursor ?? null);
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor!;
    }
    expect(pages).toEqual([true, true, false]);
    expect(seen).toHaveLength(5);
    expect([...seen].sort()).toEqual(created.map((u) => u.id).sort());
    expect(codes(await gql(s.url, UsersDocument, { first: 101 }, admin.token))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await gql(s.url, UsersDocument, { first: 2, after: 'garbage' }, admin.token))).toEqual([
      'BAD_USER_INPUT',
    ]);
  });
});

describe('updateUser', () => {
  it('changes role, status and tier, and the change applies to the next request', async () => {
    const u = await createUser(s, admin);
    const r = await ok(
      s.url,
      UpdateUserDocument,
      { input: { id: u.id, role: 'OBSERVER', tier: 'PREMIUM' } },
      admin.token,
    );
    expect(r.updateUser).toEqual({ id: u.id, role: 'OBSERVER', status: 'ACTIVE', tier: 'PREMIUM' });
    expect((await ok(s.url, MeDocument, {}, u.token)).me).toMatchObject({ role: 'OBSERVER', tier: 'PREMIUM' });
    // Now an observer: its next mutation outside its own account is refused.
    expect(
      codes(
        await gql(
          s.url,
          CreateInvitationDocument,
          { input: { role: 'USER', maxUses: 1, expiresAt: new Date(Date.now() + 60_000).toISOString() } },
          u.token,
        ),
      ),
    ).toEqual(['FORBIDDEN']);
    const back = await ok(
      s.url,
      UpdateUserDocument,
      { input: { id: u.id, role: 'USER', status: 'INACTIVE' } },
      admin.token,
    );
    expect(back.updateUser).toMatchObject({ role: 'USER', status: 'INACTIVE' });
  });

  it('answers NOT_FOUND for an unknown user', async () => {
    expect(codes(await updateUser({ id: '00000000-0000-7000-8000-000000000000', tier: 'VIP' }))).toEqual(['NOT_FOUND']);
  });
});

describe('who may do what', () => {
  const adminOperations = (target: TestUser): [string, (token: string) => Promise<GqlResult<unknown>>][] => [
    ['users', (t) => gql(s.url, UsersDocument, {}, t)],
    ['updateUser', (t) => updateUser({ id: target.id, tier: 'VIP' }, t)],
    [
      'updateUser on itself',
      (t) =>
        gql(
          s.url,
          UpdateUserDocument,
          {
            input: {
              id: (JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()) as { sub: string }).sub,
              role: 'ADMIN',
            },
          },
          t,
        ),
    ],
    ['blockUser', (t) => gql(s.url, BlockUserDocument, { input: { id: target.id, reason: 'because' } }, t)],
    ['unblockUser', (t) => gql(s.url, UnblockUserDocument, { id: target.id }, t)],
    [
      'createInvitation',
      (t) =>
        gql(
          s.url,
          CreateInvitationDocument,
          { input: { role: 'ADMIN', maxUses: 1, expiresAt: new Date(Date.now() + 60_000).toISOString() } },
          t,
        ),
    ],
    ['invitations', (t) => gql(s.url, '{ invitations { totalCount } }', {}, t)],
    [
      'createServiceToken',
      (t) =>
        gql(
          s.url,
          CreateServiceTokenDocument,
          { input: { name: 'x', serviceActor: 'agent:x', expiresAt: SOON, scopes: ['work'] } },
          t,
        ),
    ],
  ];

  for (const role of ['USER', 'OBSERVER'] as const) {
    it(`refuses a ${role} every admin operation with FORBIDDEN`, async () => {
      const caller = await createUser(s, admin, role);
      const target = await createUser(s, admin);
      for (const [name, run] of adminOperations(target)) {
        const r = await run(caller.token);
        expect({ name, codes: codes(r) }).toEqual({ name, codes: ['FORBIDDEN'] });
      }
      expect((await ok(s.url, MeDocument, {}, caller.token)).me.role).toBe(role);
      expect((await ok(s.url, MeDocument, {}, target.token)).me).toMatchObject({ tier: 'BASIC', isBlocked: false });
    });
  }

  it('lets an OBSERVER act on its own account: updateMe, createApiToken, changePassword, logout', async () => {
    const o = await createUser(s, admin, 'OBSERVER');
    expect((await ok(s.url, UpdateMeDocument, { input: { name: 'Watcher' } }, o.token)).updateMe.name).toBe('Watcher');
    expect(
      (await ok(s.url, CreateApiTokenDocument, { input: { name: 'read-only script' } }, o.token)).createApiToken.token,
    ).toMatch(/^stw_/);
    expect(
      await ok(
        s.url,
        ChangePasswordDocument,
        { input: { currentPassword: o.password, newPassword: 'observer passphrase' } },
        o.token,
      ),
    ).toEqual({ changePassword: true });
    expect(await ok(s.url, LogoutDocument, {}, o.token)).toEqual({ logout: true });
    expect(await whoAmI(s, o.token)).toEqual(REVOKED);
  });

  it("does not let an OBSERVER or a USER touch another user's invitation or account", async () => {
    const inv = await invitation(s, admin);
    for (const role of ['OBSERVER', 'USER'] as const) {
      const caller = await createUser(s, admin, role);
      expect(codes(await gql(s.url, RevokeInvitationDocument, { id: inv.id }, caller.token))).toEqual(['FORBIDDEN']);
      expect(codes(await updateUser({ id: admin.id, role: 'USER' }, caller.token))).toEqual(['FORBIDDEN']);
    }
    expect((await ok(s.url, MeDocument, {}, admin.token)).me.role).toBe('ADMIN');
  });

  it('lets any signed-in user look a user up by id, and nobody without credentials', async () => {
    const u = await createUser(s, admin, 'OBSERVER');
    expect((await ok(s.url, UserDocument, { id: admin.id }, u.token)).user).toEqual({
      id: admin.id,
      username: admin.username,
    });
    expect((await ok(s.url, UserDocument, { id: 'not-a-uuid' }, u.token)).user).toBeNull();
    expect(codes(await gql(s.url, UserDocument, { id: admin.id }))).toEqual(['UNAUTHENTICATED']);
  });
});

describe('the last administrator', () => {
  it('cannot be demoted, suspended, deactivated or blocked away', async () => {
    const own = await serverForThisTest();
    const only = await firstAdmin(own);
    const attempts = [
      { id: only.id, role: 'USER' as const },
      { id: only.id, role: 'OBSERVER' as const },
      { id: only.id, status: 'SUSPENDED' as const },
      { id: only.id, status: 'INACTIVE' as const },
      { id: only.id, role: 'ADMIN' as const, status: 'SUSPENDED' as const },
      { id: only.id, role: 'USER' as const, status: 'ACTIVE' as const },
    ];
    for (const input of attempts)
      expect({ input, codes: codes(await updateUser(input, only.token, own)) }).toEqual({ input, codes: ['CONFLICT'] });
    expect(
      codes(await gql(own.url, BlockUserDocument, { input: { id: only.id, reason: 'oops' } }, only.token)),
    ).toEqual(['FORBIDDEN']);
    expect((await ok(own.url, MeDocument, {}, only.token)).me).toMatchObject({
      role: 'ADMIN',
      status: 'ACTIVE',
      isBlocked: false,
    });

    // With a second active admin, the first may step down.
    const inv = (
      await ok(
        own.url,
        CreateInvitationDocument,
        { input: { role: 'ADMIN', maxUses: 1, expiresAt: new Date(Date.now() + 60_000).toISOString() } },
        only.token,
      )
    ).createInvitation;
    const second = await gql(
      own.url,
      `mutation($code: String!) { signUp(input: { email: "second@example.test", username: "second", password: "second admin pass", invitationCode: $code }) { user { id role } } }`,
      { code: inv.code },
    );
    expect(second.data.signUp.user.role).toBe('ADMIN');
    expect((await updateUser({ id: only.id, role: 'USER' }, only.token, own)).data).toMatchObject({
      updateUser: { role: 'USER' },
    });
  });

  it('is never lost when two admins demote, suspend or block each other at the same moment', async () => {
    const own = await serverForThisTest();
    const a = await firstAdmin(own);
    const block = (id: string, token: string) =>
      gql(own.url, BlockUserDocument, { input: { id, reason: 'coup' } }, token);
    const moves: ((target: TestUser, token: string) => Promise<GqlResult<unknown>>)[] = [
      (target, token) => updateUser({ id: target.id, role: 'USER' }, token, own),
      (target, token) => updateUser({ id: target.id, status: 'SUSPENDED' }, token, own),
      (target, token) => block(target.id, token),
    ];
    for (const move of moves) {
      const b = await createUser(own, a, 'ADMIN');
      const c = await createUser(own, a, 'ADMIN');
      await ok(own.url, UpdateUserDocument, { input: { id: a.id, role: 'USER' } }, a.token); // a steps aside: b and c are the only admins
      const results = await Promise.all([move(c, b.token), move(b, c.token)]);
      // One wins. The other is refused: CONFLICT when both ran at once; FORBIDDEN or UNAUTHENTICATED
      // when the winner had already committed before the loser was authenticated.
      expect(results.filter((r) => !r.errors)).toHaveLength(1);
      for (const r of results.filter((r) => r.errors))
        expect(['CONFLICT', 'FORBIDDEN', 'UNAUTHENTICATED']).toContain(codes(r)[0]);
      expect(
        await own.sql(
          `SELECT id FROM users WHERE role = 'ADMIN' AND status = 'ACTIVE' AND NOT is_blocked AND id = ANY($1)`,
          [[b.id, c.id]],
        ),
      ).toHaveLength(1);
      // a back in charge, alone, for the next move.
      await own.sql(
        `UPDATE users SET role = (CASE WHEN id = $1 THEN 'ADMIN' ELSE 'USER' END)::role WHERE id = ANY($2)`,
        [a.id, [a.id, b.id, c.id]],
      );
    }
  });
});

describe('blocking and suspending', () => {
  it("ends the blocked user's sessions and API tokens and closes their sockets; unblocking lets them sign in again", async () => {
    const u = await createUser(s, admin);
    const { token: apiToken } = (await ok(s.url, CreateApiTokenDocument, { input: { name: 'bot' } }, u.token))
      .createApiToken;
    const sessionSocket = openSocket(s, u.token);
    const tokenSocket = openSocket(s, apiToken);
    await Promise.all([sessionSocket.connected, tokenSocket.connected]);

    const r = await ok(s.url, BlockUserDocument, { input: { id: u.id, reason: 'prompt abuse' } }, admin.token);
    expect(r.blockUser).toEqual({ id: u.id, isBlocked: true, blockedReason: 'prompt abuse' });
    expect(await whoAmI(s, u.token)).toEqual(REVOKED);
    expect(await whoAmI(s, apiToken)).toEqual(REVOKED);
    expect(await closeCode(sessionSocket)).toBe(4401);
    expect(await closeCode(tokenSocket)).toBe(4401);
    expect(codes(await login(s, u.username, u.password))).toEqual(['FORBIDDEN']);
    expect(await s.sql(`SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL`, [u.id])).toHaveLength(0);

    const unblocked = await ok(s.url, UnblockUserDocument, { id: u.id }, admin.token);
    expect(unblocked.unblockUser).toEqual({ id: u.id, isBlocked: false });
    expect((await login(s, u.username, u.password)).errors).toBeUndefined();
    // The sessions that blocking ended stay ended; the API token works again.
    expect(await whoAmI(s, u.token)).toEqual(REVOKED);
    expect((await whoAmI(s, apiToken)).id).toBe(u.id);
  });

  it("ends a suspended user's sessions and closes their sockets", async () => {
    const u = await createUser(s, admin);
    const sock = openSocket(s, u.token);
    await sock.connected;
    expect((await updateUser({ id: u.id, status: 'SUSPENDED' })).data).toMatchObject({
      updateUser: { status: 'SUSPENDED' },
    });
    expect(await whoAmI(s, u.token)).toEqual(REVOKED);
    expect(await closeCode(sock)).toBe(4401);
    expect(codes(await login(s, u.username, u.password))).toEqual(['FORBIDDEN']);
    await ok(s.url, UpdateUserDocument, { input: { id: u.id, status: 'ACTIVE' } }, admin.token);
    expect((await login(s, u.username, u.password)).errors).toBeUndefined();
  });

  it('does not let an admin block itself', async () => {
    const other = await createUser(s, admin, 'ADMIN');
    expect(codes(await gql(s.url, BlockUserDocument, { input: { id: other.id, reason: 'me' } }, other.token))).toEqual([
      'FORBIDDEN',
    ]);
  });

  it('closes the sockets of a demoted admin, so no admin rights stay on an open socket', async () => {
    const demoted = await createUser(s, admin, 'ADMIN');
    const sock = openSocket(s, demoted.token);
    await sock.connected;
    await ok(s.url, UpdateUserDocument, { input: { id: demoted.id, role: 'USER' } }, admin.token);
    expect(await closeCode(sock)).toBe(4401);
    // The session itself goes on, with the new role.
    expect((await ok(s.url, MeDocument, {}, demoted.token)).me.role).toBe('USER');
    expect(codes(await gql(s.url, UsersDocument, {}, demoted.token))).toEqual(['FORBIDDEN']);
  });
});
