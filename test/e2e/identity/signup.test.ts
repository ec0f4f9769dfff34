import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ActiveInvitationsDocument, MeDocument, RevokeInvitationDocument } from '../../generated/graphql.js';
import { codes, ok } from '../../support/client.js';
import { invitation, serverForThisTest, sha256, trySignUp } from '../../support/identity.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { firstAdmin, unique, type TestUser } from '../../support/users.js';

let s: TestServer;
let admin: TestUser;
beforeAll(async () => {
  s = await startTestServer();
  admin = await firstAdmin(s);
});
afterAll(() => s?.close());

const usesOf = async (id: string) =>
  (await s.sql<{ uses: number }>('SELECT uses FROM invitations WHERE id = $1', [id]))[0]!.uses;

describe('signUp', () => {
  it('makes the first user ever an ADMIN and requires an invitation code afterwards', async () => {
    const fresh = await serverForThisTest();
    const first = await trySignUp(fresh);
    expect(first.errors).toBeUndefined();
    expect(first.data.signUp.user.role).toBe('ADMIN');
    expect((await ok(fresh.url, MeDocument, {}, first.data.signUp.accessToken)).me.role).toBe('ADMIN');

    const second = await trySignUp(fresh);
    expect(codes(second)).toEqual(['FORBIDDEN']);
    expect(second.data).toBeNull();
    expect(await fresh.sql('SELECT id FROM users')).toHaveLength(1);
  });

  it('lets anyone sign up as USER without a code when OPEN_SIGNUP is on', async () => {
    const open = await serverForThisTest({ env: { OPEN_SIGNUP: 'true' } });
    expect((await trySignUp(open)).data.signUp.user.role).toBe('ADMIN');
    const second = await trySignUp(open);
    expect(second.errors).toBeUndefined();
    expect(second.data.signUp.user.role).toBe('USER');
  });

  it('applies the role of the invitation', async () => {
    for (const role of ['OBSERVER', 'ADMIN', 'USER'] as const) {
      const { code } = await invitation(s, admin, { role });
      const r = await trySignUp(s, { invitationCode: code });
      expect(r.errors).toBeUndefined();
      expect(r.data.signUp.user.role).toBe(role);
    }
  });

  it('refuses an unknown invitation code with BAD_USER_INPUT', async () => {
    expect(codes(await trySignUp(s, { invitationCode: 'inv_not-a-real-code' }))).toEqual(['BAD_USER_INPUT']);
  });

  it('refuses an invitation code that is used up', async () => {
    const { code, id } = await invitation(s, admin, { maxUses: 2 });
    expect((await trySignUp(s, { invitationCode: code })).errors).toBeUndefined();
    expect((await trySignUp(s, { invitationCode: code })).errors).toBeUndefined();
    const third = await trySignUp(s, { invitationCode: code });
    expect(codes(third)).toEqual(['BAD_USER_INPUT']);
    expect(third.errors![0]!.extensions).toMatchObject({ field: 'invitationCode' });
    expect(await usesOf(id)).toBe(2);
  });

  it('refuses an expired invitation code', async () => {
    const { code, id } = await invitation(s, admin);
    await s.sql(`UPDATE invitations SET expires_at = now() - interval '1 second' WHERE id = $1`, [id]);
    expect(codes(await trySignUp(s, { invitationCode: code }))).toEqual(['BAD_USER_INPUT']);
    expect(await usesOf(id)).toBe(0);
  });

  it('refuses a revoked invitation code', async () => {
    const { code, id } = await invitation(s, admin, { maxUses: 5 });
    const active = async () =>
      (await ok(s.url, ActiveInvitationsDocument, {}, admin.token)).invitations.edges.map((e) => e.node.id);
    expect(await active()).toContain(id);
    await ok(s.url, RevokeInvitationDocument, { id }, admin.token);
    expect(await active()).not.toContain(id);
    expect(codes(await trySignUp(s, { invitationCode: code }))).toEqual(['BAD_USER_INPUT']);
  });

  it('refuses a code bound to another e-mail, and accepts it for that e-mail in any case', async () => {
    const username = unique();
    const { code } = await invitation(s, admin, { email: `${username}@Example.test` });
    expect(codes(await trySignUp(s, { invitationCode: code }))).toEqual(['BAD_USER_INPUT']);
    const r = await trySignUp(s, { invitationCode: code, username, email: `${username.toUpperCase()}@EXAMPLE.TEST` });
    expect(r.errors).toBeUndefined();
    expect(r.data.signUp.user.email).toBe(`${username}@example.test`);
  });

  it('creates exactly one account when two sign-ups race for a single-use code', async () => {
    const { code, id } = await invitation(s, admin);
    const [a, b] = [unique(), unique()];
    const results = await Promise.all([
      trySignUp(s, { invitationCode: code, username: a }),
      trySignUp(s, { invitationCode: code, username: b }),
    ]);
    expect(results.filter((r) => r.data?.signUp).length).toBe(1);
    expect(results.flatMap(codes)).toEqual(['BAD_USER_INPUT']);
    expect(await s.sql('SELECT id FROM users WHERE username = ANY($1)', [[a, b]])).toHaveLength(1);
    expect(await usesOf(id)).toBe(1);
  });

  it('refuses a taken e-mail or username with CONFLICT, without using up the invitation', async () => {
    const { code, id } = await invitation(s, admin, { maxUses: 3 });
    const username = unique();
    expect((await trySignUp(s, { invitationCode: code, username })).errors).toBeUndefined();

    const sameEmail = await trySignUp(s, { invitationCode: code, email: `${username.toUpperCase()}@example.test` });
    expect(codes(sameEmail)).toEqual(['CONFLICT']);
    const sameUsername = await trySignUp(s, {
      invitationCode: code,
      username: username.toUpperCase(),
      email: `${unique()}@example.test`,
    });
    expect(codes(sameUsername)).toEqual(['CONFLICT']);
    expect(await usesOf(id)).toBe(1);
  });

  it('enforces a password of 8 to 128 characters', async () => {
    const { code } = await invitation(s, admin, { maxUses: 10 });
    for (const password of ['x'.repeat(7), 'x'.repeat(129), '']) {
      const r = await trySignUp(s, { invitationCode: code, password });
      expect(codes(r)).toEqual(['BAD_USER_INPUT']);
      expect(r.errors![0]!.message).toMatch(/password/);
    }
    for (const password of ['x'.repeat(8), 'y'.repeat(128)])
      expect((await trySignUp(s, { invitationCode: code, password })).errors).toBeUndefined();
  });

  it('stores only a hash of the invitation code and an argon2id hash of the password', async () => {
    const { code, id } = await invitation(s, admin);
    const username = unique();
    await trySignUp(s, { invitationCode: code, username });
    const [inv] = await s.sql<{ row: string; code_hash: string }>(
      'SELECT row_to_json(i)::text AS row, code_hash FROM invitations i WHERE id = $1',
      [id],
    );
    expect(inv!.row).not.toContain(code);
    expect(inv!.code_hash).toBe(sha256(code));
    const [user] = await s.sql<{ password_hash: string }>('SELECT password_hash FROM users WHERE username = $1', [
      username,
    ]);
    expect(user!.password_hash).toMatch(/^\$argon2id\$v=19\$/);
    // At or above OWASP's minimum: m=19 MiB, t=2, p=1.
    expect(user!.password_hash).toMatch(/[$,]m=19456[,$]/);
    expect(user!.password_hash).toMatch(/[$,]t=2[,$]/);
    expect(user!.password_hash).toMatch(/[$,]p=1[,$]/);
  });
});
