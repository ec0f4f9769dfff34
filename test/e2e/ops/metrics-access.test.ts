import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startTestServer, type TestServer } from '../../support/server.js';

/** Who may scrape /metrics: METRICS_TOKEN (a bearer token) and METRICS_PORT (a listener of its own). */
const TOKEN = 'metrics-token-0123456789';

let tokened: TestServer;
let ported: TestServer;
let both: TestServer;
beforeAll(async () => {
  [tokened, ported, both] = await Promise.all([
    startTestServer({ env: { METRICS_TOKEN: TOKEN } }),
    startTestServer({ env: { METRICS_PORT: '0' } }),
    startTestServer({ env: { METRICS_PORT: '0', METRICS_TOKEN: TOKEN } }),
  ]);
});
afterAll(async () => {
  await Promise.all([tokened?.close(), ported?.close(), both?.close()]);
});

const get = (url: string, authorization?: string) => fetch(url, { headers: authorization ? { authorization } : {} });
const metricsUrl = (s: TestServer) => `http://127.0.0.1:${s.app.metricsPort}/metrics`;

describe('METRICS_TOKEN', () => {
  it('refuses a scrape without the token, or with another, with 401 and no figures', async () => {
    for (const auth of [undefined, 'Bearer wrong-token-0123456789', `Basic ${TOKEN}`, `Bearer ${TOKEN}x`]) {
      const res = await get(`${tokened.app.url}/metrics`, auth);
      expect(res.status, auth).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(await res.text()).not.toContain('steward_');
    }
  });

  it('serves the figures with the token', async () => {
    const res = await get(`${tokened.app.url}/metrics`, `Bearer ${TOKEN}`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('steward_process_cpu_user_seconds_total');
  });

  it('refuses a token shorter than 16 characters at start', async () => {
    await expect(startTestServer({ env: { METRICS_TOKEN: 'short' } })).rejects.toThrow(/METRICS_TOKEN/);
  });
});

describe('METRICS_PORT', () => {
  it('moves /metrics off the API port', async () => {
    expect(ported.app.metricsPort).toBeGreaterThan(0);
    expect(ported.app.metricsPort).not.toBe(ported.app.port);
    expect((await get(`${ported.app.url}/metrics`)).status).toBe(404);
    const res = await get(metricsUrl(ported));
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('steward_db_pool_connections');
    // Nothing else is served there: not the API.
    expect((await fetch(metricsUrl(ported).replace('/metrics', '/graphql'), { method: 'POST' })).status).toBe(404);
  });

  it('with METRICS_TOKEN too, the separate port needs the token', async () => {
    expect((await get(metricsUrl(both))).status).toBe(401);
    expect((await get(metricsUrl(both), `Bearer ${TOKEN}`)).status).toBe(200);
    expect((await get(`${both.app.url}/metrics`, `Bearer ${TOKEN}`)).status).toBe(404);
  });
});

describe('production', () => {
  it('serves no unguarded /metrics: without a token or a port of its own it is off', async () => {
    const s = await startTestServer({ env: { NODE_ENV: 'production' } });
    try {
      expect((await get(`${s.app.url}/metrics`)).status).toBe(404);
    } finally {
      await s.close();
    }
  });
});
