import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { codes, gql, wsClient, wsExecute, type GqlResult, type WsOutcome } from '../../support/client.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { firstAdmin, type TestUser } from '../../support/users.js';

/**
 * Every query limit answers the same over HTTP and over WebSocket: same code, same
 * message. Small limits keep the offending queries short.
 */
let s: TestServer;
let admin: TestUser;
let ws: Client;

beforeAll(async () => {
  s = await startTestServer({
    env: {
      MAX_QUERY_DEPTH: '3',
      MAX_QUERY_ALIASES: '3',
      MAX_QUERY_DIRECTIVES: '3',
      MAX_QUERY_TOKENS: '200',
      MAX_QUERY_COST: '300',
      MAX_BODY_BYTES: '2048',
    },
  });
  admin = await firstAdmin(s);
  ws = wsClient(s.wsUrl, admin.token);
});
afterAll(async () => {
  await ws?.dispose();
  await s?.close();
});

/** The same operation over both transports, as the admin. */
async function overBoth(
  query: string,
  variables?: Record<string, unknown>,
): Promise<{ http: GqlResult<any>; ws: WsOutcome<any> }> {
  return { http: await gql(s.url, query, variables, admin.token), ws: await wsExecute(ws, query, variables) };
}

/** Both transports refused the operation with `code`, with the same message. */
function expectRefusedAlike(r: { http: GqlResult<any>; ws: WsOutcome<any> }, code: string): string {
  expect(r.ws.close).toBeUndefined();
  expect(codes(r.http)).toEqual([code]);
  expect(codes(r.ws)).toEqual([code]);
  expect(r.ws.errors![0]!.message).toBe(r.http.errors![0]!.message);
  expect(r.http.data ?? undefined).toBeUndefined();
  return r.http.errors![0]!.message;
}

async function expectAnsweredOverBoth(query: string, variables?: Record<string, unknown>) {
  const r = await overBoth(query, variables);
  expect(r.http.errors).toBeUndefined();
  expect(r.ws.errors).toBeUndefined();
  expect(r.ws.data).toEqual(r.http.data);
}

const repeat = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => f(i)).join(' ');

describe('query limits, identical over HTTP and WebSocket', () => {
  it('refuses a query deeper than MAX_QUERY_DEPTH and accepts one at the limit', async () => {
    const message = expectRefusedAlike(
      await overBoth('{ users { edges { node { id } } } }'),
      'GRAPHQL_VALIDATION_FAILED',
    );
    expect(message).toBe('Query depth limit of 3 exceeded, found 4.');
    await expectAnsweredOverBoth('{ users(first: 1) { pageInfo { hasPreviousPage } } }');
  });

  it('counts the depth of fragments as if they were written inline', async () => {
    const r = await overBoth('query { users { ...E } } fragment E on UserConnection { edges { node { id } } }');
    expect(expectRefusedAlike(r, 'GRAPHQL_VALIDATION_FAILED')).toMatch(/depth limit of 3/);
  });

  it('refuses more than MAX_QUERY_ALIASES aliases and accepts as many as allowed', async () => {
    // (aliases of __typename are free: graphql-armor allows them, they cost nothing)
    const message = expectRefusedAlike(
      await overBoth(`{ ${repeat(4, (i) => `a${i}: me { id }`)} }`),
      'GRAPHQL_VALIDATION_FAILED',
    );
    expect(message).toBe('Aliases limit of 3 exceeded, found 4.');
    await expectAnsweredOverBoth(`{ ${repeat(3, (i) => `a${i}: me { id }`)} }`);
  });

  it('refuses more than MAX_QUERY_DIRECTIVES directives and accepts as many as allowed', async () => {
    const four =
      '{ __typename @include(if: true) me @include(if: true) { id @include(if: true) username @include(if: true) } }';
    expect(expectRefusedAlike(await overBoth(four), 'GRAPHQL_VALIDATION_FAILED')).toMatch(
      /Directives limit of 3 exceeded, found 4/,
    );
    await expectAnsweredOverBoth(
      '{ __typename @include(if: true) me @include(if: true) { id @include(if: true) username } }',
    );
  });

  it('stops parsing a document longer than MAX_QUERY_TOKENS with a parse error', async () => {
    const long = `{ me { ${repeat(200, () => 'id')} } }`;
    const message = expectRefusedAlike(await overBoth(long), 'GRAPHQL_PARSE_FAILED');
    expect(message).toMatch(/Document contains more th.. 200 tokens\. Parsing aborted/); // (sic: graphql-js says "more that")
    await expectAnsweredOverBoth(`{ me { ${repeat(190, () => 'id')} } }`);
  });

  it('refuses an operation whose estimated cost exceeds MAX_QUERY_COST, with its cost', async () => {
    // users(first: 100) × (edges.cursor + totalCount + pageInfo{4 fields}) = 1 + 100 × 7
    const r = await overBoth(
      '{ users(first: 100) { totalCount edges { cursor } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }',
    );
    expect(expectRefusedAlike(r, 'QUERY_TOO_COMPLEX')).toBe('Query cost 701 exceeds the maximum of 300');
    expect(r.http.status).toBe(400);
    expect(r.http.errors![0]!.extensions).toMatchObject({ cost: 701, maximumCost: 300 });
    expect(r.ws.errors![0]!.extensions).toMatchObject({ cost: 701, maximumCost: 300 });
    await expectAnsweredOverBoth('{ users(first: 10) { totalCount edges { cursor } } }');
  });

  it('costs a page by the size it asks for, also when the size comes from a variable', async () => {
    const query = 'query ($n: Int) { users(first: $n) { totalCount edges { cursor } pageInfo { hasNextPage } } }';
    expectRefusedAlike(await overBoth(query, { n: 100 }), 'QUERY_TOO_COMPLEX');
    await expectAnsweredOverBoth(query, { n: 5 });
  });

  it('refuses a short document whose fragments expand past what can be costed, as too complex and not as a server error', async () => {
    // Each fragment spreads the previous one twice: 2^14 fields from ~150 tokens.
    const fragments = Array.from({ length: 14 }, (_, i) => `fragment F${i + 1} on User { ...F${i} ...F${i} }`).join(
      ' ',
    );
    const r = await overBoth(`{ me { ...F14 } } fragment F0 on User { id } ${fragments}`);
    expectRefusedAlike(r, 'QUERY_TOO_COMPLEX');
    expect(r.http.status).toBe(400);
  });

  it('refuses variables that do not fit their types as BAD_USER_INPUT, before costing the operation', async () => {
    const r = await overBoth('query ($n: Int) { users(first: $n) { totalCount } }', { n: 'ten' });
    expect(expectRefusedAlike(r, 'BAD_USER_INPUT')).toMatch(
      /^Variable "\$n" got invalid value "ten"; Int cannot represent non-integer value/,
    );
    expect(r.http.status).toBe(400);
  });

  it('refuses a page larger than 100 items as BAD_USER_INPUT', async () => {
    for (const arg of ['first', 'last']) {
      const r = await overBoth(`{ users(${arg}: 101) { totalCount } }`);
      expect(codes(r.http)).toEqual(['BAD_USER_INPUT']);
      expect(codes(r.ws)).toEqual(['BAD_USER_INPUT']);
      expect(r.http.errors![0]!.message).toMatch(new RegExp(`${arg} must not be greater than 100`));
      expect(r.ws.errors![0]!.message).toBe(r.http.errors![0]!.message);
    }
    await expectAnsweredOverBoth('{ users(first: 100) { totalCount } }');
  });

  it('keeps a WebSocket open and usable after refusing operations on it', async () => {
    expectRefusedAlike(await overBoth(`{ ${repeat(4, (i) => `a${i}: me { id }`)} }`), 'GRAPHQL_VALIDATION_FAILED');
    expectRefusedAlike(await overBoth(`{ me { ${repeat(201, () => 'id')} } }`), 'GRAPHQL_PARSE_FAILED');
    expect(await wsExecute(ws, '{ __typename }')).toEqual({ data: { __typename: 'Query' } });
    expect(s.app.connections).toBe(1);
  });
});

describe('request body size over HTTP', () => {
  const padded = (bytes: number) => JSON.stringify({ query: `{ __typename }${' '.repeat(bytes)}` });

  it('answers 413 to a body larger than MAX_BODY_BYTES', async () => {
    const res = await fetch(s.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: padded(3000),
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({
      errors: [{ message: 'Request body exceeds 2048 bytes', extensions: { code: 'BAD_REQUEST' } }],
    });
  });

  it('answers 413 to an oversized body sent in chunks without a Content-Length', async () => {
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 4; i++)
          c.enqueue(new TextEncoder().encode(i === 0 ? '{"query":"{ __typename }' : ' '.repeat(1000)));
        c.enqueue(new TextEncoder().encode('"}'));
        c.close();
      },
    });
    const res = await fetch(s.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(413);
  });

  it('serves a body just under the limit', async () => {
    const body = padded(1900);
    expect(Buffer.byteLength(body)).toBeLessThan(2048);
    const res = await fetch(s.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ data: { __typename: 'Query' } });
  });
});
