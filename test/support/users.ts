import { randomBytes } from 'node:crypto';

import { CreateInvitationDocument, SignUpDocument, type Role } from '../generated/graphql.js';
import { ok } from './client.js';
import type { TestServer } from './server.js';

export interface TestUser {
  id: string;
  email: string;
  username: string;
  password: string;
  role: Role;
  token: string;
  refreshToken: string;
}

/** A name no other test will pick. */
export const unique = (prefix = 'u') => `${prefix}${randomBytes(5).toString('hex')}`;

export const PASSWORD = 'correct horse battery';

export interface NewUserOptions {
  /** Display name (default `Test <username>`); put a unique tag in it to find the user with `users(where: { search })`. */
  name?: string;
}

async function signUp(s: TestServer, invitationCode?: string, opts: NewUserOptions = {}): Promise<TestUser> {
  const username = unique();
  const email = `${username}@example.test`;
  const r = await ok(s.url, SignUpDocument, {
    input: { email, username, password: PASSWORD, name: opts.name ?? `Test ${username}`, invitationCode },
  });
  return {
    id: r.signUp.user.id,
    email,
    username,
    password: PASSWORD,
    role: r.signUp.user.role,
    token: r.signUp.accessToken,
    refreshToken: r.signUp.refreshToken,
  };
}

/** The first sign-up on a fresh database: becomes ADMIN. Call once per test server. */
export const firstAdmin = (s: TestServer) => signUp(s);

/** A user of `role`, invited by `admin` through the API. */
export async function createUser(
  s: TestServer,
  admin: TestUser,
  role: Role = 'USER',
  opts: NewUserOptions = {},
): Promise<TestUser> {
  const inv = await ok(
    s.url,
    CreateInvitationDocument,
    { input: { role, maxUses: 1, expiresAt: new Date(Date.now() + 3600_000).toISOString() } },
    admin.token,
  );
  return signUp(s, inv.createInvitation.code, opts);
}

/** Quotas a test reaches only when it means to (the defaults are small). */
export const ROOMY_QUOTA = {
  requestsPerHour: 1000,
  dailyTokenLimit: 1_000_000,
  monthlyTokenLimit: 1_000_000,
  monthlyMessageLimit: 1000,
};

const SET_USER_QUOTA = `mutation($input: SetUserQuotaInput!) { setUserQuota(input: $input) { updatedAt } }`;

/** Sets `userId`'s quota to ROOMY_QUOTA with `input` over it (a cost limit, a tighter token limit), as `admin`. */
export async function setRoomyQuota(
  s: TestServer,
  admin: TestUser,
  userId: string,
  input: Record<string, unknown> = {},
) {
  await ok(s.url, SET_USER_QUOTA, { input: { userId, ...ROOMY_QUOTA, ...input } }, admin.token);
}
