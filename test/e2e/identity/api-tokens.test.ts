import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  ApiTokenDetailsDocument,
  CreateApiTokenDocument,
  CreateServiceTokenDocument,
  MeDocument,
  RevokeApiTokenDocument,
  UpdateMeDocument,
  UserUpdatedDocument,
} from '../../generated/graphql.js';
import { codes, gql, ok, subscribe, wsClient } from '../../support/client.js';
import { closeCode, eventually, openSocket, sha256, whoAmI } from '../../support/identity.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { createUser, firstAdmin, type TestUser } from '../../support/users.js';
import { busListeners } from '../../support/wait.js';

/** Service tokens must expire. */
const SOON = new Date(Date.now() + 24 * 3600_000).toISOString();

let s: TestServer;
let admin: TestUser;
beforeAll(async () => {
  s = await startTestServer();
  admin = await firstAdmin(s);
});
afterAll(() => s?.close());

const createToken = async (u: TestUser, name = 'ci') =>
  (await ok(s.url, CreateApiTokenDocument, { input: { name } }, u.token)).createApiToken;
const listTokens = async (u: TestUser) => (await ok(s.url, ApiTokenDetailsDocument, {}, u.token)).apiTokens;
const REFUSED = { status: 401, codes: ['UNAUTHENTICATED'], id: undefined };

describe('API tokens', () => {
  it('shows the token once, with at least 128 random bits, and lists only its prefix', async () => {
    const u = await createUser(s, admin);
    const created = await createToken(u, 'deploy bot');
    expect(created.token).toMatch(/^stw_[A-Za-z0-9_-]{43,}$/); // 32 random bytes, base64url
    expect(created.apiToken).toMatchObject({
      name: 'deploy bot',
      prefix: created.token.slice(0, 12),
      lastUsedAt: null,
      revokedAt: null,
    });
    expect(created.token.startsWith(created.apiToken.prefix)).toBe(true);

    const list = await listTokens(u);
    expect(list.totalCount).toBe(1);
    expect(list.edges[0]!.node).toMatchObject({
      id: created.apiToken.id,
      name: 'deploy bot',
      prefix: created.apiToken.prefix,
    });
    expect(JSON.stringify(list)).not.toContain(created.token.slice(12));
    // Nobody else sees it.
    expect((await listTokens(await createUser(s, admin))).totalCount).toBe(0);
  });

  it('stores only a hash of the token', async () => {
    const u = await createUser(s, admin);
    const { token, apiToken } = await createToken(u);
    const rows = await s.sql<{ row: string; token_hash: string }>(
      'SELECT row_to_json(t)::text AS row, token_hash FROM api_tokens t WHERE user_id = $1',
      [u.id],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.row).not.toContain(token.slice(12));
    expect(rows[0]!.token_hash).toBe(sha256(token));
    const audit = await s.sql<{ row: string }>(
      `SELECT row_to_json(a)::text AS row FROM audit_events a WHERE entity_id = $1`,
      [apiToken.id],
    );
    expect(audit.length).toBeGreaterThan(0);
    for (const a of audit) expect(a.row).not.toContain(token.slice(12));
  });

  it('authenticates as its user with Bearer over HTTP, and records when it was last used', async () => {
    const u = await createUser(s, admin);
    const { token, apiToken } = await createToken(u);
    const me = await ok(s.url, MeDocument, {}, token);
    expect(me.me).toMatchObject({ id: u.id, username: u.username });
    const used = await eventually(
      async () => (await listTokens(u)).edges.find((e) => e.node.id === apiToken.id)!.node.lastUsedAt,
      (v) => v !== null,
      'lastUsedAt',
    );
    expect(Math.abs(new Date(used!).getTime() - Date.now())).toBeLessThan(60_000);
  });

  it('authenticates a WebSocket through the connection_init payload', async () => {
    const u = await createUser(s, admin);
    const { token } = await createToken(u);
    const client = wsClient(s.wsUrl, token);
    const listening = busListeners(s);
    const events = subscribe(client, UserUpdatedDocument, { id: u.id });
    await listening.registered();
    await ok(s.url, UpdateMeDocument, { input: { name: 'Via token' } }, token);
    expect(await events.next()).toMatchObject({ userUpdated: { id: u.id, name: 'Via token' } });
    events.dispose();
    await client.dispose();
  });

  it('stops working at once when revoked, on HTTP and on the socket opened with it', async () => {
    const u = await createUser(s, admin);
    const { token, apiToken } = await createToken(u);
    const other = await createToken(u, 'other');
    const sock = openSocket(s, token);
    const otherSock = openSocket(s, other.token);
    await Promise.all([sock.connected, otherSock.connected]);
    expect((await whoAmI(s, token)).id).toBe(u.id);

    const revoked = await ok(s.url, RevokeApiTokenDocument, { id: apiToken.id }, u.token);
    expect(revoked.revokeApiToken.revokedAt).not.toBeNull();
    expect(await whoAmI(s, token)).toEqual(REFUSED);
    expect(await closeCode(sock)).toBe(4401);
    // The user's other token and its socket carry on.
    expect((await whoAmI(s, other.token)).id).toBe(u.id);
    await otherSock.staysOpen(200);
    // A socket cannot be opened with it any more.
    expect(await closeCode(openSocket(s, token))).toBe(4403);
  });

  it("does not let another user revoke someone's token", async () => {
    const u = await createUser(s, admin);
    const intruder = await createUser(s, admin);
    const { token, apiToken } = await createToken(u);
    expect(codes(await gql(s.url, RevokeApiTokenDocument, { id: apiToken.id }, intruder.token))).toEqual(['NOT_FOUND']);
    expect((await whoAmI(s, token)).id).toBe(u.id);
    // An admin may.
    await ok(s.url, RevokeApiTokenDocument, { id: apiToken.id }, admin.token);
    expect(await whoAmI(s, token)).toEqual(REFUSED);
  });

  it('refuses an expired token and an unknown one', async () => {
    const u = await createUser(s, admin);
    const { token, apiToken } = await (
      await ok(
        s.url,
        CreateApiTokenDocument,
        { input: { name: 'short-lived', expiresAt: new Date(Date.now() + 3600_000).toISOString() } },
        u.token,
      )
    ).createApiToken;
    expect((await whoAmI(s, token)).id).toBe(u.id);
    await s.sql(`UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = $1`, [apiToken.id]);
    expect(await whoAmI(s, token)).toEqual(REFUSED);
    expect(await whoAmI(s, `stw_${'A'.repeat(43)}`)).toEqual(REFUSED);
    expect(
      codes(
        await gql(
          s.url,
          CreateApiTokenDocument,
          { input: { name: 'x', expiresAt: new Date(Date.now() - 1000).toISOString() } },
          u.token,
        ),
      ),
    ).toEqual(['BAD_USER_INPUT']);
  });

  it('refuses the tokens of a blocked user', async () => {
    const u = await createUser(s, admin);
    const { token } = await createToken(u);
    await ok(
      s.url,
      `mutation($id: ID!) { blockUser(input: { id: $id, reason: "leaked" }) { id } }`,
      { id: u.id },
      admin.token,
    );
    expect(await whoAmI(s, token)).toEqual(REFUSED);
  });
});

describe('service tokens', () => {
  it('are created by admins only', async () => {
    const u = await createUser(s, admin);
    const input = { name: 'docker runtime', serviceActor: 'runtime:docker', expiresAt: SOON, scopes: ['containers'] };
    expect(codes(await gql(s.url, CreateServiceTokenDocument, { input }, u.token))).toEqual(['FORBIDDEN']);
    const created = (await ok(s.url, CreateServiceTokenDocument, { input }, admin.token)).createServiceToken;
    expect(created.apiToken).toMatchObject({ name: 'docker runtime', serviceActor: 'runtime:docker' });
  });

  it('are refused on ordinary operations such as me and updateMe', async () => {
    const { token } = (
      await ok(
        s.url,
        CreateServiceTokenDocument,
        { input: { name: 'agent', serviceActor: 'agent:senior-engineer', expiresAt: SOON, scopes: ['read', 'write'] } },
        admin.token,
      )
    ).createServiceToken;
    for (const r of [
      await gql(s.url, MeDocument, {}, token),
      await gql(s.url, UpdateMeDocument, { input: { name: 'hijacked' } }, token),
      await gql(s.url, CreateApiTokenDocument, { input: { name: 'escalate' } }, token),
      await gql(
        s.url,
        `mutation($id: ID!) { updateUser(input: { id: $id, role: USER }) { id } }`,
        { id: admin.id },
        token,
      ),
    ]) {
      expect(r.status).toBe(200);
      expect(codes(r)).toEqual(['FORBIDDEN']);
    }
    expect((await ok(s.url, MeDocument, {}, admin.token)).me.name).not.toBe('hijacked');
  });
});
