import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';

import { gql, ok, wsClient } from '../../support/client.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { firstAdmin, type TestUser } from '../../support/users.js';

/**
 * The client address Steward records (sessions, audit events, rate limits) behind a
 * reverse proxy: X-Forwarded-For counts only through TRUSTED_PROXIES, over HTTP and on
 * the WebSocket upgrade.
 */
const LOGIN = `mutation ($input: LoginInput!) { login(input: $input) { accessToken } }`;
const SESSION_IPS = `{ sessions(first: 50) { edges { node { ip } } } }`;

let proxied: TestServer;
let direct: TestServer;
let proxiedAdmin: TestUser;
let directAdmin: TestUser;

beforeAll(async () => {
  [proxied, direct] = await Promise.all([
    startTestServer({ env: { TRUSTED_PROXIES: 'loopback, 10.0.0.0/8' } }),
    startTestServer(),
  ]);
  [proxiedAdmin, directAdmin] = await Promise.all([firstAdmin(proxied), firstAdmin(direct)]);
});
afterAll(async () => {
  await Promise.all([proxied?.close(), direct?.close()]);
});

/** Logs in over HTTP with `xff` and answers the IP the new session was recorded with. */
async function loginIp(s: TestServer, user: TestUser, xff?: string): Promise<string | null> {
  const r = await gql(
    s.url,
    LOGIN,
    { input: { login: user.email, password: user.password } },
    undefined,
    xff ? { 'x-forwarded-for': xff } : {},
  );
  expect(r.errors).toBeUndefined();
  const token = (r.data as { login: { accessToken: string } }).login.accessToken;
  const me = await ok<{ sessions: { edges: { node: { ip: string | null } }[] } }>(s.url, SESSION_IPS, undefined, token);
  // The token's own session is the newest: its ip is the one of this login.
  const ips = me.sessions.edges.map((e) => e.node.ip);
  return ips[0] ?? null;
}

describe('X-Forwarded-For over HTTP', () => {
  it('is ignored without TRUSTED_PROXIES: the socket peer is the client', async () => {
    expect(await loginIp(direct, directAdmin, '203.0.113.7')).toBe('127.0.0.1');
  });

  it('names the client when the peer is a trusted proxy', async () => {
    expect(await loginIp(proxied, proxiedAdmin, '203.0.113.7')).toBe('203.0.113.7');
  });

  it('walks trusted hops and stops at the first untrusted one, so a client cannot pick its address', async () => {
    // client says 1.1.1.1, its real address 198.51.100.9 was appended by an inner proxy 10.1.2.3
    expect(await loginIp(proxied, proxiedAdmin, '1.1.1.1, 198.51.100.9, 10.1.2.3')).toBe('198.51.100.9');
  });

  it('keeps the peer without the header', async () => {
    expect(await loginIp(proxied, proxiedAdmin)).toBe('127.0.0.1');
  });

  it('refuses a TRUSTED_PROXIES entry that is not an address or CIDR, naming it', async () => {
    await expect(startTestServer({ env: { TRUSTED_PROXIES: '10.0.0.0/8, proxy.example' } })).rejects.toThrow(
      /TRUSTED_PROXIES.*proxy\.example/s,
    );
  });
});

describe('X-Forwarded-For on the WebSocket upgrade', () => {
  const withHeaders = (headers: Record<string, string>) =>
    class extends WebSocket {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(url, protocols, { headers });
      }
    };

  async function wsLoginIp(s: TestServer, user: TestUser, xff: string): Promise<string | null> {
    const client = wsClient(s.wsUrl, user.token, { webSocketImpl: withHeaders({ 'x-forwarded-for': xff }) });
    try {
      const result = await new Promise<{ data?: { login: { accessToken: string } } | null; errors?: unknown }>(
        (resolve, reject) => {
          let value: unknown;
          client.subscribe(
            { query: LOGIN, variables: { input: { login: user.email, password: user.password } } },
            {
              next: (v) => (value = v),
              error: reject,
              complete: () => resolve(value as never),
            },
          );
        },
      );
      expect(result.errors).toBeUndefined();
      const me = await ok<{ sessions: { edges: { node: { ip: string | null } }[] } }>(
        s.url,
        SESSION_IPS,
        undefined,
        result.data!.login.accessToken,
      );
      return me.sessions.edges[0]?.node.ip ?? null;
    } finally {
      await client.dispose();
    }
  }

  it('names the client behind a trusted proxy', async () => {
    expect(await wsLoginIp(proxied, proxiedAdmin, '192.0.2.44')).toBe('192.0.2.44');
  });

  it('is ignored without TRUSTED_PROXIES', async () => {
    expect(await wsLoginIp(direct, directAdmin, '192.0.2.44')).toBe('127.0.0.1');
  });
});
