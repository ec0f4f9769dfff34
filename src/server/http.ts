import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HeaderMap, type ApolloServer } from '@apollo/server';

import { AppError } from '../shared/errors.js';
import type { RequestMeta } from '../shared/scope.js';
import { clientIp } from './client-ip.js';
import { createContext, type Context, type Runtime } from './context.js';
import { httpStatusOfError } from './http-status.js';
import { requestStore } from './request-store.js';
import type { Route } from './route.js';

export type { Route, RouteContext } from './route.js';

const REQUEST_ID = /^[\w.:-]{1,64}$/;

export function requestMeta(req: IncomingMessage): RequestMeta {
  const given = req.headers['x-request-id'];
  return {
    requestId: typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID(),
    ip: clientIp(req),
    userAgent: req.headers['user-agent']?.slice(0, 500) ?? null,
  };
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

const graphqlError = (message: string, code: string) => ({ errors: [{ message, extensions: { code } }] });

class BodyTooLarge extends Error {}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) return reject(new BodyTooLarge());
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.removeAllListeners('data');
        reject(new BodyTooLarge());
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/**
 * The node http handler: health probes, extra routes, and /graphql through Apollo's
 * `executeHTTPGraphQLRequest` (no express: one less layer per request). The viewer is
 * resolved before Apollo runs; bad credentials answer 401 with UNAUTHENTICATED.
 */
export function createHttpHandler(
  runtime: Runtime,
  apollo: ApolloServer<Context>,
  routes: readonly Route[],
  ready: () => Promise<boolean>,
) {
  const { logger } = runtime;

  return async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://localhost');
    try {
      if (url.pathname === '/healthz') return sendJson(res, 200, { status: 'ok' });
      if (url.pathname === '/readyz') {
        const ok = await ready().catch(() => false);
        return sendJson(res, ok ? 200 : 503, { status: ok ? 'ready' : 'not ready' });
      }
      for (const route of routes) {
        const params = route.method === req.method ? route.path.exec(url.pathname) : null;
        if (params) return await serveRoute(runtime, route, params, req, res);
      }
      if (url.pathname !== '/graphql') return sendJson(res, 404, { error: 'not found' });
      if (req.method !== 'GET' && req.method !== 'POST') {
        return sendJson(res, 405, graphqlError('Use GET or POST', 'BAD_REQUEST'), { allow: 'GET, POST' });
      }
      await serveGraphql(runtime, apollo, url, req, res);
    } catch (err) {
      logger.error({ err }, 'http handler failed');
      if (!res.headersSent) sendJson(res, 500, graphqlError('Internal server error', 'INTERNAL_SERVER_ERROR'));
      else res.end();
    }
  };
}

/** A module's plain HTTP route; its AppErrors become a status and a GraphQL-shaped body, anything else a 500. */
function serveRoute(
  runtime: Runtime,
  route: Route,
  params: RegExpExecArray,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const meta = requestMeta(req);
  res.setHeader('x-request-id', meta.requestId);
  return requestStore.run(meta, async () => {
    try {
      await route.handler(req, res, {
        params,
        runtime,
        meta,
        authenticate: () => runtime.services.authenticator.fromAuthorization(req.headers.authorization),
      });
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      if (!res.headersSent) sendJson(res, httpStatusOfError(err), graphqlError(err.message, err.code));
      else res.destroy();
    }
  });
}

/** /graphql over GET or POST: body, viewer, then Apollo; its answer streamed when it is incremental. */
function serveGraphql(
  runtime: Runtime,
  apollo: ApolloServer<Context>,
  url: URL,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const meta = requestMeta(req);
  res.setHeader('x-request-id', meta.requestId);
  return requestStore.run(meta, async () => {
    const body = req.method === 'POST' ? await readGraphqlBody(req, res, runtime.config.MAX_BODY_BYTES) : undefined;
    if (body === ANSWERED) return;

    let viewer;
    try {
      viewer = await runtime.services.authenticator.fromAuthorization(req.headers.authorization);
    } catch (err) {
      if (err instanceof AppError)
        return sendJson(res, 401, graphqlError(err.message, err.code), { 'www-authenticate': 'Bearer' });
      throw err;
    }

    const headers = new HeaderMap();
    for (const [k, v] of Object.entries(req.headers))
      if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
    const result = await apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method: req.method!.toUpperCase(), headers, search: url.search, body },
      context: async () => createContext(runtime, viewer, meta),
    });
    for (const [k, v] of result.headers) res.setHeader(k, v);
    res.statusCode = result.status ?? 200;
    if (result.body.kind === 'complete') return void res.end(result.body.string);
    for await (const chunk of result.body.asyncIterator) res.write(chunk);
    res.end();
  });
}

/** Says that the body reader has already answered the request (413 or 400). */
const ANSWERED = Symbol('answered');

/** A POST's body: parsed JSON for the JSON media types, the raw text otherwise, for Apollo to judge. */
async function readGraphqlBody(
  req: IncomingMessage,
  res: ServerResponse,
  limit: number,
): Promise<unknown | typeof ANSWERED> {
  let text: string;
  try {
    text = await readBody(req, limit);
  } catch (err) {
    if (!(err instanceof BodyTooLarge)) throw err;
    sendJson(res, 413, graphqlError(`Request body exceeds ${limit} bytes`, 'BAD_REQUEST'), { connection: 'close' });
    return ANSWERED;
  }
  const type = req.headers['content-type'] ?? '';
  if (!type.startsWith('application/json') && !type.startsWith('application/graphql-response+json')) return text;
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    sendJson(res, 400, graphqlError('Request body is not valid JSON', 'BAD_REQUEST'));
    return ANSWERED;
  }
}
