import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { Config } from '../config.js';
import { safeEqual } from '../shared/crypto.js';
import type { Logger } from '../shared/logger.js';
import type { Route } from './http.js';
import { serveMetrics, type Metrics } from './metrics.js';

export interface MetricsEndpoint {
  /** /metrics on the API's own port; none when METRICS_PORT moves it, or when production leaves it unguarded. */
  routes: Route[];
  /** The port of the separate metrics listener (METRICS_PORT; 0 picks one), or null. */
  port: number | null;
  close(): Promise<void>;
}

/**
 * Where Prometheus scrapes, and who may. Metrics name operations, tokens spent and the
 * pool's load: not for the public internet. Two guards, either or both:
 *
 * - METRICS_PORT: /metrics leaves the API port for a listener of its own (on
 *   METRICS_HOST), which a container publishes to nobody while a scraper on the same
 *   network reaches it;
 * - METRICS_TOKEN: every scrape must carry `Authorization: Bearer <token>` (compared
 *   in constant time), wherever /metrics is served.
 *
 * In production with neither, /metrics is not served at all (a warning says how to
 * turn it on): an unguarded endpoint on 0.0.0.0 is never the default there.
 */
export async function openMetricsEndpoint(config: Config, metrics: Metrics, logger: Logger): Promise<MetricsEndpoint> {
  const token = config.METRICS_TOKEN;
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    if (token && !bearerMatches(req.headers.authorization, token)) {
      res.writeHead(401, { 'content-type': 'text/plain; charset=utf-8', 'www-authenticate': 'Bearer realm="metrics"' });
      res.end('metrics need Authorization: Bearer <METRICS_TOKEN>\n');
      return;
    }
    return serveMetrics(metrics, res);
  };

  if (config.METRICS_PORT === undefined) {
    if (config.isProduction && !token) {
      logger.warn({ module: 'metrics' }, '/metrics is off: in production set METRICS_TOKEN, METRICS_PORT, or both');
      return { routes: [], port: null, close: async () => {} };
    }
    return {
      routes: [{ method: 'GET', path: /^\/metrics$/, handler: (req, res) => handle(req, res) }],
      port: null,
      close: async () => {},
    };
  }

  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method === 'GET' && path === '/metrics') {
      Promise.resolve(handle(req, res)).catch((err: unknown) => {
        logger.error({ err, module: 'metrics' }, 'serving metrics failed');
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.METRICS_PORT, config.METRICS_HOST, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  logger.info(
    { module: 'metrics', host: config.METRICS_HOST, port, token: Boolean(token) },
    'metrics served on their own port',
  );
  return {
    routes: [],
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer (.+)$/i.exec(header ?? '');
  return m !== null && safeEqual(m[1]!, token);
}
