import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { LoginDocument, RefreshSessionDocument } from '../../generated/graphql.js';
import { codes, gql, ok } from '../../support/client.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { firstAdmin, type TestUser } from '../../support/users.js';

/** SESSION_MAX_LIFETIME_SECONDS: a sign-in and all its refreshes end a fixed time after the sign-in. */
const MAX = 3600;
let s: TestServer;
let admin: TestUser;
beforeAll(async () => {
  s = await startTestServer({ env: { SESSION_MAX_LIFETIME_SECONDS: String(MAX) } });
  admin = await firstAdmin(s);
});
afterAll(() => s?.close());

const refresh = (refreshToken: string) => gql(s.url, RefreshSessionDocument, { input: { refreshToken } });
const familyOf = async (refreshToken: string) =>
  (
    await s.sql<{ family_id: string }>(
      `SELECT family_id FROM sessions WHERE refresh_token_hash = encode(sha256($1::bytea), 'hex')`,
      [refreshToken],
    )
  )[0]!.family_id;

describe('absolute session lifetime', () => {
  it('caps a refresh token at the end of its sign-in, however long REFRESH_TOKEN_TTL_SECONDS is', async () => {
    const login = await ok(s.url, LoginDocument, { input: { login: admin.email, password: admin.password } });
    const rows = await s.sql<{ secs: number }>(
      `SELECT extract(epoch FROM expires_at - created_at)::int AS secs FROM sessions WHERE family_id = $1`,
      [await familyOf(login.login.refreshToken)],
    );
    expect(rows[0]!.secs).toBeLessThanOrEqual(MAX);
  });

  it('refreshes within the lifetime, and refuses past it without rotating the token', async () => {
    const login = await ok(s.url, LoginDocument, { input: { login: admin.email, password: admin.password } });
    const first = await refresh(login.login.refreshToken);
    expect(first.errors).toBeUndefined();
    const current = first.data!.refreshSession.refreshToken;

    // The sign-in was MAX + 60 s ago (its rows moved back; the token itself has not expired).
    const family = await familyOf(current);
    await s.sql(`UPDATE sessions SET created_at = created_at - make_interval(secs => $2) WHERE family_id = $1`, [
      family,
      MAX + 60,
    ]);
    await s.sql(
      `UPDATE sessions SET expires_at = now() + interval '1 hour' WHERE family_id = $1 AND rotated_at IS NULL`,
      [family],
    );

    const late = await refresh(current);
    expect(codes(late)).toEqual(['UNAUTHENTICATED']);
    expect(late.errors![0]!.message).toMatch(/maximum lifetime/);
    // Refused, not counted as reuse: the token is untouched and the family not revoked.
    const after = await s.sql<{ rotated: boolean; revoked: boolean }>(
      `SELECT rotated_at IS NOT NULL AS rotated, revoked_at IS NOT NULL AS revoked FROM sessions WHERE family_id = $1 AND refresh_token_hash = encode(sha256($2::bytea), 'hex')`,
      [family, current],
    );
    expect(after).toEqual([{ rotated: false, revoked: false }]);
  });
});
