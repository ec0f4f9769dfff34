import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { projectRoot } from './dashboard.js';
import type { Route } from './http.js';

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  ttf: 'font/ttf',
  woff: 'font/woff',
  woff2: 'font/woff2',
  svg: 'image/svg+xml',
  png: 'image/png',
};

/** Everything from this origin; Monaco adds inline styles and runs its language services in workers. */
const CSP =
  "default-src 'self'; style-src 'self' 'unsafe-inline'; font-src 'self' data:; img-src 'self' data:; worker-src 'self'; connect-src 'self' ws: wss:; frame-ancestors 'none'";

export const defaultGraphiqlDir = () => join(projectRoot(), 'dist', 'graphiql');

/** GraphiQL's page, or null when it was never built. */
export function graphiqlHtml(dir = defaultGraphiqlDir()): string | null {
  try {
    return readFileSync(join(dir, 'index.html'), 'utf8');
  } catch {
    return null;
  }
}

/**
 * GET /graphiql: GraphiQL bundled by `npm run build:graphiql` into dist/graphiql/ (no CDN,
 * so it works offline). Files are read on each request, so a rebuild needs no restart;
 * 503 when it was never built. Only plain file names of that folder are served.
 */
export function graphiqlRoutes(dir = defaultGraphiqlDir()): Route[] {
  return [
    {
      method: 'GET',
      path: /^\/graphiql(?:\/([\w-]+(?:\.[\w-]+)*\.(\w+))?)?\/?$/,
      handler(_req, res, { params }) {
        const file = params[1] ?? 'index.html';
        const type = TYPES[params[2] ?? 'html'];
        let body: Buffer | null = null;
        if (type) {
          try {
            body = readFileSync(join(dir, file));
          } catch {
            body = null;
          }
        }
        if (!body) {
          const built = graphiqlHtml(dir) !== null;
          res.writeHead(built ? 404 : 503, { 'content-type': 'text/plain; charset=utf-8' });
          return void res.end(
            built ? 'Not found\n' : 'GraphiQL is not built: run `npm run build:graphiql` (part of `npm run build`).\n',
          );
        }
        res.writeHead(200, {
          'content-type': type!,
          'content-length': body.length,
          // The bundle's assets carry no hash in their names (but the font): revalidate.
          'cache-control': 'no-cache',
          'content-security-policy': CSP,
          'x-content-type-options': 'nosniff',
        });
        res.end(body);
      },
    },
  ];
}
