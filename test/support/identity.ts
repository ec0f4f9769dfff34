import { createHash } from 'node:crypto';
import * as OTPAuth from 'otpauth';
import { onTestFinished } from 'vitest';

import {
  CreateInvitationDocument,
  LoginFullDocument,
  MyIdDocument,
  SignUpDocument,
  UserUpdatedDocument,
  type Role,
} from '../generated/graphql.js';
import { deferred, gql, ok, subscribe, wsClient, type GqlResult } from './client.js';
import { startTestServer, type TestServer, type TestServerOptions } from './server.js';
import { PASSWORD, unique, type TestUser } from './users.js';

/** Helpers for the identity e2e tests (test/e2e/identity). */

export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** A server started for one test only (its own database), stopped when the test ends. */
export async function serverForThisTest(opts: TestServerOptions = {}): Promise<TestServer> {
  const s = await startTestServer(opts);
  onTestFinished(() => s.close());
  return s;
}

/** `login` over HTTP with optional extra headers (user agent, request id). */
export function login(
  s: TestServer,
  loginName: string,
  password: string,
  totpCode?: string,
  headers: Record<string, string> = {},
) {
  return gql(s.url, LoginFullDocument, { input: { login: loginName, password, totpCode } }, undefined, headers);
}

/** A fresh session (access + refresh token) for a user that exists. */
export async function newSession(
  s: TestServer,
  u: Pick<TestUser, 'username' | 'password'>,
  headers: Record<string, string> = {},
) {
  const r = await login(s, u.username, u.password, undefined, headers);
  if (!r.data) throw new Error(`login failed: ${JSON.stringify(r.errors)}`);
  return { token: r.data.login.accessToken, refreshToken: r.data.login.refreshToken };
}

/** `me` with a token: the HTTP status and the error codes (for "this token no longer works"). */
export async function whoAmI(s: TestServer, token: string) {
  const r = await gql(s.url, MyIdDocument, {}, token);
  return { status: r.status, codes: (r.errors ?? []).map((e) => e.extensions?.code), id: r.data?.me.id };
}

export async function invitation(
  s: TestServer,
  admin: TestUser,
  input: { role?: Role; maxUses?: number; expiresAt?: string; email?: string } = {},
) {
  const r = await ok(
    s.url,
    CreateInvitationDocument,
    {
      input: {
        role: input.role ?? 'USER',
        maxUses: input.maxUses ?? 1,
        expiresAt: input.expiresAt ?? new Date(Date.now() + 3600_000).toISOString(),
        email: input.email,
      },
    },
    admin.token,
  );
  return { code: r.createInvitation.code, id: r.createInvitation.invitation.id };
}

/** A sign-up attempt with a fresh unique username and e-mail (unless given). */
export function trySignUp(
  s: TestServer,
  input: { invitationCode?: string; email?: string; username?: string; password?: string } = {},
): Promise<GqlResult<any>> {
  const username = input.username ?? unique();
  return gql(s.url, SignUpDocument, {
    input: {
      email: input.email ?? `${username}@example.test`,
      username,
      password: input.password ?? PASSWORD,
      invitationCode: input.invitationCode,
    },
  });
}

/** Resolves with `promise`, or rejects after `ms` naming `what`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms)),
  ]);
}

/** Polls `read` every 20 ms until `accept` holds (state the test cannot await, e.g. a write made in the background). */
export async function eventually<T>(
  read: () => Promise<T>,
  accept: (v: T) => boolean,
  what: string,
  ms = 3000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (accept(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface OpenSocket {
  /** Resolves once the server acknowledged connection_init. */
  connected: Promise<void>;
  /** Resolves with the close code when the socket closes. */
  closed: Promise<number>;
  /** Proves the socket is still open `ms` later. */
  staysOpen(ms: number): Promise<void>;
  dispose(): Promise<void>;
}

/**
 * A graphql-ws socket authenticated with `token` in connection_init, kept busy with a
 * `userUpdated` subscription so that it stays open; disposed when the test ends.
 */
export function openSocket(s: TestServer, token: string | null): OpenSocket {
  const connected = deferred();
  const closed = deferred<number>();
  let isClosed = false;
  const client = wsClient(s.wsUrl, token, {
    on: {
      connected: () => connected.resolve(),
      closed: (e) => {
        isClosed = true;
        closed.resolve((e as { code: number }).code);
      },
    },
  });
  const sub = subscribe(client, UserUpdatedDocument, {});
  void sub.ended;
  const dispose = async () => {
    sub.dispose();
    await client.dispose();
  };
  onTestFinished(dispose);
  const acknowledged = within(connected.promise, 5000, 'WebSocket connection_ack');
  acknowledged.catch(() => {}); // a test expecting a refusal never awaits it: not an unhandled rejection
  return {
    connected: acknowledged,
    closed: closed.promise,
    async staysOpen(ms) {
      await new Promise((r) => setTimeout(r, ms));
      if (isClosed) throw new Error('the socket was closed');
    },
    dispose,
  };
}

/** The close code of a socket, waiting at most `ms`. */
export const closeCode = (sock: OpenSocket, ms = 3000) => within(sock.closed, ms, 'WebSocket close');

/**
 * A TOTP code for `secret`, `steps` periods away from now. Waits out the last second of
 * a period so that the server validates in the same step the code was computed for.
 */
export async function totpCode(secret: string, steps = 0): Promise<string> {
  const inPeriod = (Date.now() / 1000) % 30;
  if (inPeriod > 28.5) await new Promise((r) => setTimeout(r, (30 - inPeriod) * 1000 + 50));
  return new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret) }).generate({
    timestamp: Date.now() + steps * 30_000,
  });
}
