import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { codes, gql, wsClient, wsExecute } from '../../support/client.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { firstAdmin, type TestUser } from '../../support/users.js';

/**
 * What a production server keeps to itself (its schema: no introspection, no "Did you
 * mean" hints that let a client map it field by field) and what a development server
 * offers, over HTTP and WebSocket alike.
 */
interface Instance {
  s: TestServer;
  admin: TestUser;
  ws: Client;
}
let production: Instance;
let development: Instance;

async function start(NODE_ENV: string): Promise<Instance> {
  const s = await startTestServer({ env: { NODE_ENV } });
  const admin = await firstAdmin(s);
  return { s, admin, ws: wsClient(s.wsUrl, admin.token) };
}

beforeAll(async () => {
  [production, development] = await Promise.all([start('production'), start('development')]);
});
afterAll(async () => {
  for (const i of [production, development]) {
    await i?.ws.dispose();
    await i?.s.close();
  }
});

const INTROSPECTION = ['{ __schema { queryType { name } } }', '{ __type(name: "User") { name } }'];
const TYPO = '{ usr(id: "x") { id } }';
const BAD_ENUM = {
  query: 'query ($w: UserWhere) { users(where: $w) { totalCount } }',
  variables: { w: { role: 'ADMN' } },
};

async function overBoth(i: Instance, query: string, variables?: Record<string, unknown>) {
  return [await gql(i.s.url, query, variables, i.admin.token), await wsExecute(i.ws, query, variables)] as const;
}

describe('with NODE_ENV=production', () => {
  it('refuses introspection over HTTP and WebSocket', async () => {
    for (const query of INTROSPECTION) {
      // (over HTTP Apollo's own introspection rule adds its wording to graphql-js's)
      for (const r of await overBoth(production, query)) {
        expect(codes(r).length).toBeGreaterThan(0);
        expect(new Set(codes(r))).toEqual(new Set(['GRAPHQL_VALIDATION_FAILED']));
        for (const e of r.errors!) expect(e.message).toMatch(/introspection/i);
        expect(r.data ?? undefined).toBeUndefined();
      }
    }
  });

  it('still answers __typename, which is not introspection', async () => {
    for (const r of await overBoth(production, '{ __typename }')) expect(r.data).toEqual({ __typename: 'Query' });
  });

  it('gives no "Did you mean" suggestions for a mistyped field or enum value', async () => {
    const [http, ws] = await overBoth(production, TYPO);
    expect(http.errors!.map((e) => e.message)).toEqual(['Cannot query field "usr" on type "Query".']);
    expect(ws.errors!.map((e) => e.message)).toEqual(http.errors!.map((e) => e.message));

    for (const r of await overBoth(production, BAD_ENUM.query, BAD_ENUM.variables)) {
      expect(codes(r)).toEqual(['BAD_USER_INPUT']);
      expect(r.errors![0]!.message).toMatch(/Value "ADMN" does not exist in "Role" enum\.$/);
      expect(JSON.stringify(r)).not.toMatch(/Did you mean|ADMIN/);
    }
  });

  it('does not embed Apollo Sandbox in its landing page', async () => {
    const res = await fetch(production.s.url, { headers: { accept: 'text/html' } });
    expect(await res.text()).not.toMatch(/new window\.EmbeddedSandbox/);
  });
});

describe('in development', () => {
  it('answers introspection over HTTP and WebSocket', async () => {
    const [http, ws] = await overBoth(development, INTROSPECTION[0]!);
    expect(http.data).toEqual({ __schema: { queryType: { name: 'Query' } } });
    expect(ws.data).toEqual(http.data);
  });

  it('suggests the field or enum value that was probably meant', async () => {
    for (const r of await overBoth(development, TYPO)) {
      expect(r.errors![0]!.message).toBe('Cannot query field "usr" on type "Query". Did you mean "user" or "users"?');
    }
    for (const r of await overBoth(development, BAD_ENUM.query, BAD_ENUM.variables)) {
      expect(codes(r)).toEqual(['BAD_USER_INPUT']);
      expect(r.errors![0]!.message).toMatch(/Did you mean the enum value "ADMIN"\?$/);
    }
  });

  it('serves Apollo Sandbox as the landing page', async () => {
    const res = await fetch(development.s.url, { headers: { accept: 'text/html' } });
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/new window\.EmbeddedSandbox/);
  });
});
