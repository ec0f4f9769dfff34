import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Route } from './http.js';

/** The project root: the nearest folder above this file with a package.json (works from src/ and dist/src/). */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
  return dir;
}

const FILES: Record<string, string> = {
  '': 'index.html',
  '/': 'index.html',
  '/app.js': 'app.js',
  '/usage': 'usage.html',
  '/usage.js': 'usage.js',
  '/common.css': 'common.css',
};
const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

/**
 * GET /dashboard (and /dashboard/usage, the Usage page): the live dashboard bundled by `npm run build:dashboard` into
 * dist/dashboard/ (no CDN: the pages, their scripts and their shared stylesheet are served from here). Read on
 * each request, so a rebuild needs no restart; 503 when it was never built.
 */
export function dashboardRoutes(dir = join(projectRoot(), 'dist', 'dashboard')): Route[] {
  return [
    {
      method: 'GET',
      path: /^\/dashboard(\/|\/app\.js|\/usage|\/usage\.js|\/common\.css)?$/,
      handler(_req, res, { params }) {
        const file = FILES[params[1] ?? ''];
        let body: Buffer;
        try {
          body = readFileSync(join(dir, file));
        } catch {
          res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' });
          return void res.end('The dashboard is not built: run `npm run build:dashboard` (part of `npm run build`).\n');
        }
        res.writeHead(200, {
          'content-type': TYPES[file.split('.').pop()!],
          'content-length': body.length,
          'cache-control': 'no-cache',
          // Only this origin: the page's script, its own styles, and /graphql over HTTP and WS.
          'content-security-policy':
            "default-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self' ws: wss:; img-src 'self' data:; frame-ancestors 'none'",
          'x-content-type-options': 'nosniff',
        });
        res.end(body);
      },
    },
  ];
}
