import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { codes, gql } from '../../support/client.js';
import { startTestServer, type TestServer } from '../../support/server.js';

/** The HTTP edge: what reaches Apollo, and what a browser on another site cannot make it do. */
let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(() => s?.close());

const typename = encodeURIComponent('{ __typename }');

describe('CSRF prevention', () => {
  it('refuses a GET query without a preflight-forcing header, as a cross-site page could send it', async () => {
    const res = await fetch(`${s.url}?query=${typename}`);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { errors: { message: string; extensions: { code: string } }[] };
    expect(body.errors[0]!.message).toMatch(/Cross-Site Request Forgery/);
    expect(body.errors[0]!.extensions.code).toBe('BAD_REQUEST');
  });

  it('answers the same GET query with apollo-require-preflight', async () => {
    const res = await fetch(`${s.url}?query=${typename}`, { headers: { 'apollo-require-preflight': 'true' } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ data: { __typename: 'Query' } });
  });

  it('refuses a POST whose content type a plain HTML form may send', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const res = await fetch(s.url, {
        method: 'POST',
        headers: { 'content-type': type },
        body: JSON.stringify({ query: '{ __typename }' }),
      });
      expect(res.status, type).toBe(400);
      expect(await res.text(), type).toMatch(/Cross-Site Request Forgery/);
    }
  });

  it('refuses a mutation sent with GET, even with the preflight header', async () => {
    const query = encodeURIComponent('mutation { logout }');
    const res = await fetch(`${s.url}?query=${query}`, { headers: { 'apollo-require-preflight': 'true' } });
    expect(res.status).toBe(405);
  });
});

describe('batching', () => {
  it('refuses a JSON array of operations', async () => {
    const res = await fetch(s.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ query: '{ __typename }' }, { query: '{ __typename }' }]),
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/batching/i);
  });
});

describe('the HTTP edge', () => {
  it('answers 405 to methods other than GET and POST on /graphql', async () => {
    const res = await fetch(s.url, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, POST');
  });

  it('answers 404 outside /graphql and the probes', async () => {
    expect((await fetch(`${s.app.url}/nothing-here`)).status).toBe(404);
  });

  it('answers 400 to a body that is not JSON', async () => {
    const res = await fetch(s.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"query": ',
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      errors: [{ message: 'Request body is not valid JSON', extensions: { code: 'BAD_REQUEST' } }],
    });
  });

  it('keeps a well-formed X-Request-Id and replaces anything else', async () => {
    const kept = await gql(s.url, '{ __typename }', undefined, undefined, { 'x-request-id': 'trace-42.a:b' });
    expect(kept.headers.get('x-request-id')).toBe('trace-42.a:b');
    const replaced = await gql(s.url, '{ __typename }', undefined, undefined, { 'x-request-id': 'bad id; drop table' });
    expect(replaced.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers 401 with UNAUTHENTICATED to a malformed or unknown bearer token, before running anything', async () => {
    for (const authorization of ['Basic abc', 'Bearer not-a-token']) {
      const r = await gql(s.url, '{ __typename }', undefined, undefined, { authorization });
      expect(r.status, authorization).toBe(401);
      expect(codes(r)).toEqual(['UNAUTHENTICATED']);
      expect(r.headers.get('www-authenticate')).toBe('Bearer');
    }
  });
});
