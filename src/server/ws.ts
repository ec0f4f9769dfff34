import type { IncomingMessage, Server } from 'node:http';
import { GraphQLError, parse, validate, specifiedRules, getOperationAST, type DocumentNode, type GraphQLSchema } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import { CREDENTIALS_REVOKED, type CredentialsRevoked } from '../modules/identity/identity.events.js';
import { AppError } from '../shared/errors.js';
import type { Viewer } from '../shared/scope.js';
import { createContext, type Context, type Runtime } from './context.js';
import type { ErrorFormatter } from './errors.js';
import { requestMeta } from './http.js';
import type { QueryLimits } from './limits.js';

interface SocketState {
  viewer?: Viewer;
  subscriptions: number;
  socket: WebSocket;
}

interface Extra extends Record<PropertyKey, unknown> {
  socket: WebSocket;
  request: IncomingMessage;
  state?: SocketState;
}

/** Closes a socket whose credentials were revoked (graphql-ws reserves 4400–4499 for such codes). */
const REVOKED = 4401;

/**
 * graphql-ws on the HTTP server's port and path. A socket authenticates once, in
 * connection_init (`{ authorization: "Bearer …" }`); without valid credentials it is
 * closed (4403). Every operation goes through the same parse options, validation rules
 * and cost check as HTTP. Sockets are indexed by user, session and API token so that
 * a revocation published on any instance closes them here too.
 */
export function attachWebSocket(server: Server, schema: GraphQLSchema, runtime: Runtime, limits: QueryLimits, formatError: ErrorFormatter) {
  const { config, services, bus, logger } = runtime;
  const wss = new WebSocketServer({ server, path: '/graphql', maxPayload: config.WS_MAX_PAYLOAD_BYTES });
  const byUser = new Map<string, Set<SocketState>>();
  const rules = [...specifiedRules, ...limits.validationRules];
  // Parsed and validated documents, by source text: dashboards send the same few.
  const documents = new Map<string, DocumentNode | readonly GraphQLError[]>();

  const prepare = (query: string): DocumentNode | readonly GraphQLError[] => {
    let cached = documents.get(query);
    if (!cached) {
      try {
        const doc = parse(query, limits.parseOptions);
        const errors = validate(schema, doc, rules);
        cached = errors.length ? errors : doc;
      } catch (err) {
        // Tagged as Apollo tags it over HTTP, so that a refused document (e.g. over
        // MAX_QUERY_TOKENS) answers with the same code on both transports.
        const e = err instanceof GraphQLError ? err : new GraphQLError(String(err));
        cached = [new GraphQLError(e.message, { source: e.source, positions: e.positions, extensions: { code: 'GRAPHQL_PARSE_FAILED' } })];
      }
      if (documents.size > 1000) documents.clear();
      documents.set(query, cached);
    }
    return cached;
  };

  const offRevoked = bus.on(CREDENTIALS_REVOKED, (p) => {
    const r = p as CredentialsRevoked;
    for (const s of byUser.get(r.userId) ?? []) {
      const v = s.viewer!;
      const hit =
        r.everything ||
        (r.allSessions && v.sessionId) ||
        (v.sessionId && r.sessionIds?.includes(v.sessionId)) ||
        (v.apiTokenId && r.apiTokenId === v.apiTokenId);
      if (hit) s.socket.close(REVOKED, `Credentials revoked: ${r.reason}`.slice(0, 120));
    }
  });

  const format = (errors: readonly GraphQLError[], requestId?: string) => errors.map((e) => formatError(e.toJSON(), e, requestId));

  const disposable = useServer<Record<string, unknown> | undefined, Extra>(
    {
      schema,
      // From the config, not process.env: in production a socket closed on an internal error gives no reason.
      isProd: config.isProduction,
      connectionInitWaitTimeout: config.WS_INIT_TIMEOUT_MS,
      onConnect: async (ctx) => {
        const auth = ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization;
        let viewer: Viewer | null = null;
        try {
          viewer = await services.authenticator.fromAuthorization(typeof auth === 'string' ? auth : null);
        } catch (err) {
          if (!(err instanceof AppError)) logger.error({ err }, 'websocket authentication failed');
        }
        if (!viewer) return false; // graphql-ws closes with 4403 Forbidden
        const state: SocketState = { viewer, subscriptions: 0, socket: ctx.extra.socket };
        ctx.extra.state = state;
        let set = byUser.get(viewer.userId);
        if (!set) byUser.set(viewer.userId, (set = new Set()));
        set.add(state);
        return true;
      },
      onSubscribe: (ctx, _id, payload) => {
        const state = ctx.extra.state!;
        if (state.subscriptions >= config.WS_MAX_SUBSCRIPTIONS) {
          return [new GraphQLError(`At most ${config.WS_MAX_SUBSCRIPTIONS} operations per connection`, { extensions: { code: 'RATE_LIMITED' } })];
        }
        const prepared = prepare(payload.query);
        if (!('kind' in prepared)) return prepared as readonly GraphQLError[];
        const document = prepared as DocumentNode;
        try {
          limits.assertCost(schema, document, payload.variables ?? undefined, payload.operationName);
        } catch (err) {
          return [err as GraphQLError];
        }
        if (!getOperationAST(document, payload.operationName)) {
          return [new GraphQLError('Unable to identify the operation', { extensions: { code: 'OPERATION_RESOLUTION_FAILURE' } })];
        }
        state.subscriptions++;
        return {
          schema,
          document,
          variableValues: payload.variables,
          operationName: payload.operationName,
          contextValue: createContext(runtime, state.viewer!, requestMeta(ctx.extra.request)),
        };
      },
      onError: (_ctx, _id, _payload, errors) => format(errors),
      // The operation's request id, explicitly: over WebSocket no request store is active, and a
      // masked INTERNAL_SERVER_ERROR must be traceable to its log entry as over HTTP.
      onNext: (_ctx, _id, _payload, args, result) =>
        result.errors ? { ...result, errors: format(result.errors, (args.contextValue as Context | undefined)?.meta.requestId) } : undefined,
      onComplete: (ctx) => {
        if (ctx.extra.state) ctx.extra.state.subscriptions = Math.max(0, ctx.extra.state.subscriptions - 1);
      },
      onClose: (ctx) => {
        const s = ctx.extra.state;
        if (!s) return;
        const set = byUser.get(s.viewer!.userId);
        set?.delete(s);
        if (set?.size === 0) byUser.delete(s.viewer!.userId);
      },
    },
    wss,
  );

  // ws closes a socket that breaks the protocol (a message over maxPayload: 1009, bad
  // framing) by itself, then emits 'error', which graphql-ws reports on the console as an
  // "internal error". It is the client's doing: log it as such, in the structured log.
  wss.on('connection', (socket) => {
    socket.removeAllListeners('error');
    socket.on('error', (err) => logger.warn({ module: 'ws', reason: err.message }, 'websocket closed: the client broke the protocol'));
  });

  return {
    wss,
    /** Open sockets, for metrics and tests. */
    get connections() {
      return wss.clients.size;
    },
    async close() {
      offRevoked();
      for (const client of wss.clients) client.close(1001, 'Server shutting down');
      await disposable.dispose();
      await new Promise<void>((r) => wss.close(() => r()));
    },
  };
}
