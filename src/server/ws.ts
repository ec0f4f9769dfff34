import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { GraphQLError, createSourceEventStream, getOperationAST, parse, specifiedRules, validate, type DocumentNode, type GraphQLSchema } from 'graphql';
import { CloseCode, handleProtocols, makeServer, type WebSocket as ProtocolSocket } from 'graphql-ws';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { TopicSource } from '../events/subscription.js';
import { CREDENTIALS_REVOKED, type CredentialsRevoked } from '../modules/identity/identity.events.js';
import { AppError } from '../shared/errors.js';
import type { RequestMeta, Viewer } from '../shared/scope.js';
import { createContext, type Context, type Runtime } from './context.js';
import type { ErrorFormatter } from './errors.js';
import { Fanout } from './fanout.js';
import type { Metrics } from './metrics.js';
import { requestMeta } from './http.js';
import type { QueryLimits } from './limits.js';

interface SocketState {
  viewer?: Viewer;
  subscriptions: number;
  socket: WebSocket;
  adapter: SocketAdapter;
  /** graphql-ws's handler of the socket's end. */
  closed: (code: number, reason: string) => Promise<void>;
  /** Answered the last keep-alive ping, or sent something since. */
  alive: boolean;
  /** When the last keep-alive ping went out (ms). */
  pingedAt: number;
  /** The upgrade request's address and agent, read once: the request itself is not kept (memory per socket). */
  meta: RequestMeta;
  /** The client named the request id (X-Request-Id on the upgrade): its operations all carry it; otherwise each gets its own. */
  requestIdGiven: boolean;
}

interface Extra extends Record<PropertyKey, unknown> {
  state: SocketState;
}

/** Closes a socket whose credentials were revoked (graphql-ws reserves 4400–4499 for such codes). */
const REVOKED = 4401;

/**
 * graphql-ws on the HTTP server's port and path. A socket authenticates once, in
 * connection_init (`{ authorization: "Bearer …" }`); without valid credentials it is
 * closed (4403). Every operation goes through the same parse options, validation rules
 * and cost check as HTTP. Sockets are indexed by user, session and API token so that
 * a revocation published on any instance closes them here too. Subscriptions are
 * delivered by the fan-out (./fanout.ts), built for tens of thousands of sockets.
 */
export function attachWebSocket(
  server: Server,
  schema: GraphQLSchema,
  runtime: Runtime,
  limits: QueryLimits,
  formatError: ErrorFormatter,
  metrics: Pick<Metrics, 'onFanout' | 'onOperation' | 'onErrors'>,
) {
  const { config, services, bus, logger } = runtime;
  const wss = new WebSocketServer({ server, path: '/graphql', maxPayload: config.WS_MAX_PAYLOAD_BYTES, handleProtocols });
  const states = new WeakMap<WebSocket, SocketState>();
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

  // Errors as sent, counted by code in /metrics as over HTTP.
  const format = (errors: readonly GraphQLError[], requestId?: string) => {
    const sent = errors.map((e) => formatError(e.toJSON(), e, requestId));
    metrics.onErrors(sent);
    return sent;
  };


  const fanout = new Fanout({
    schema,
    runtime,
    // An event's errors are counted once per execution, not per subscriber.
    format,
    sendsPerTurn: config.WS_SENDS_PER_TURN,
    maxBufferedBytes: config.WS_MAX_BUFFERED_BYTES,
    count: metrics.onFanout,
  });
  // Each operation by its context: graphql-ws hands `subscribe` and `onOperation` the
  // execution arguments only; the fan-out needs the socket and the client's operation id,
  // /metrics the time the operation arrived.
  const operations = new WeakMap<object, { id: string; socket: WebSocket; arrived: bigint }>();

  const protocol = makeServer<Record<string, unknown> | undefined, Extra>({
    schema,
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
      // The token has done its work; graphql-ws would keep it for the socket's life (memory per socket).
      (ctx as { connectionParams?: unknown }).connectionParams = undefined;
      const state = ctx.extra.state;
      state.viewer = viewer;
      let set = byUser.get(viewer.userId);
      if (!set) byUser.set(viewer.userId, (set = new Set()));
      set.add(state);
      return true;
    },
    onSubscribe: (ctx, id, payload) => {
      const started = process.hrtime.bigint();
      const state = ctx.extra.state;
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
      const contextValue = createContext(runtime, state.viewer!, state.requestIdGiven ? state.meta : { ...state.meta, requestId: randomUUID() });
      operations.set(contextValue, { id, socket: state.socket, arrived: started });
      return { schema, document, variableValues: payload.variables, operationName: payload.operationName, contextValue };
    },
    // Subscriptions: graphql-js resolves the root field (arguments, @Allow rule, the
    // field's TopicSource) and the fan-out delivers; graphql-ws keeps the protocol and the
    // lifecycle through a stream that ends when the client completes or disconnects.
    subscribe: async (args) => {
      const source = await createSourceEventStream(args);
      if (!(source instanceof TopicSource)) {
        if (!(Symbol.asyncIterator in source)) return source; // errors: arguments, rules
        logger.error({ module: 'ws' }, 'a subscription field must return subscription() (src/events/subscription.ts)');
        return { errors: [new GraphQLError('Unexpected error.', { extensions: { code: 'INTERNAL_SERVER_ERROR' } })] };
      }
      const { id, socket } = operations.get(args.contextValue as object)!;
      return new UntilEnded(fanout.add({ id, socket, source, document: args.document, operationName: args.operationName, variables: args.variableValues }));
    },
    // Refused before it ran (limits, validation): counted as an operation, as Apollo counts such requests.
    onError: (_ctx, _id, payload, errors) => {
      metrics.onOperation(payload.operationName, process.hrtime.bigint());
      return format(errors);
    },
    // Ran (a query or mutation), or subscribed: one operation, with its latency.
    onOperation: (_ctx, _id, _payload, args) => {
      // Named as Apollo names it over HTTP: by the document's operation when the client gave no name.
      const name = getOperationAST(args.document, args.operationName)?.name?.value;
      const op = operations.get(args.contextValue as object);
      operations.delete(args.contextValue as object);
      metrics.onOperation(name, op?.arrived ?? process.hrtime.bigint());
    },
    // The operation's request id, explicitly: over WebSocket no request store is active, and a
    // masked INTERNAL_SERVER_ERROR must be traceable to its log entry as over HTTP.
    onNext: (_ctx, _id, _payload, args, result) =>
      result.errors ? { ...result, errors: format(result.errors, (args.contextValue as Context | undefined)?.meta.requestId) } : undefined,
    onComplete: (ctx) => {
      ctx.extra.state.subscriptions = Math.max(0, ctx.extra.state.subscriptions - 1);
    },
    onClose: (ctx) => {
      const s = ctx.extra.state;
      if (!s.viewer) return;
      const set = byUser.get(s.viewer.userId);
      set?.delete(s);
      if (set?.size === 0) byUser.delete(s.viewer.userId);
    },
  });

  // The sockets' listeners are shared functions (`this` is the socket), not closures per
  // socket: with tens of thousands of sockets, memory per socket is what counts.
  function onError(this: WebSocket, err: Error) {
    // ws closes a socket that breaks the protocol (a message over maxPayload: 1009, bad
    // framing) by itself, then emits 'error': the client's doing, logged as such.
    logger.warn({ module: 'ws', reason: err.message }, 'websocket closed: the client broke the protocol');
  }
  function onPong(this: WebSocket) {
    states.get(this)!.alive = true;
  }
  function onMessage(this: WebSocket, data: RawData) {
    const state = states.get(this)!;
    state.alive = true;
    state.adapter.received?.(String(data)).catch((err) => {
      logger.error({ err, module: 'ws' }, 'websocket message handling failed');
      this.close(CloseCode.InternalServerError, 'Internal server error');
    });
  }
  function onClose(this: WebSocket, code: number, reason: Buffer) {
    void states.get(this)!.closed(code, String(reason));
  }

  wss.on('connection', (socket, request) => {
    const meta = requestMeta(request);
    const adapter = new SocketAdapter(socket);
    const state: SocketState = { subscriptions: 0, socket, adapter, alive: true, pingedAt: 0, meta, requestIdGiven: meta.requestId === request.headers['x-request-id'], closed: async () => {} };
    states.set(socket, state);
    socket.on('error', onError);
    socket.on('pong', onPong);
    socket.on('message', onMessage);
    socket.on('close', onClose);
    state.closed = protocol.opened(adapter, { state });
  });

  // One keep-alive sweep for every socket instead of a timer per socket, spread over the
  // interval: each of its ticks pings the next slice of the sockets, so that a round never
  // sends tens of thousands of pings (and receives their pongs) at once, in the way of
  // an event's fan-out. A socket that has neither answered its previous ping nor sent
  // anything by its turn in the next round is dead, and dropped.
  const TICKS_PER_ROUND = 50;
  let round: WebSocket[] = [];
  let next = 0;
  const sweep = setInterval(() => {
    if (next >= round.length) {
      round = [...wss.clients];
      next = 0;
    }
    const end = Math.min(round.length, next + Math.ceil(round.length / TICKS_PER_ROUND));
    const now = Date.now();
    for (; next < end; next++) {
      const socket = round[next]!;
      const state = states.get(socket);
      if (!state || socket.readyState !== socket.OPEN) continue;
      if (!state.alive) {
        // Given at least half an interval to answer (a round's order shifts as sockets leave).
        if (now - state.pingedAt >= config.WS_KEEPALIVE_MS / 2) socket.terminate();
        continue;
      }
      state.alive = false;
      state.pingedAt = now;
      socket.ping();
    }
  }, Math.max(1, Math.round(config.WS_KEEPALIVE_MS / TICKS_PER_ROUND)));
  sweep.unref();

  return {
    wss,
    /** Open sockets, for metrics and tests. */
    get connections() {
      return wss.clients.size;
    },
    /** Live subscriptions, for metrics and tests. */
    get subscriptions() {
      return fanout.size;
    },
    async close() {
      offRevoked();
      clearInterval(sweep);
      for (const client of wss.clients) client.close(1001, 'Server shutting down');
      await new Promise<void>((r) => wss.close(() => r()));
    },
  };
}

/** graphql-ws's view of a socket: methods on a prototype rather than closures per socket. */
class SocketAdapter implements ProtocolSocket {
  /** graphql-ws's handler of incoming messages. */
  received?: (data: string) => Promise<void>;

  constructor(private readonly socket: WebSocket) {}

  get protocol() {
    return this.socket.protocol;
  }

  send(data: string) {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(data);
  }

  close(code?: number, reason?: string) {
    this.socket.close(code, reason);
  }

  onMessage(cb: (data: string) => Promise<void>) {
    this.received = cb;
  }
}

const DONE: IteratorResult<never, void> = { value: undefined, done: true };

/**
 * A stream that yields nothing and ends when graphql-ws ends it (the client completed the
 * operation or went away): `end` runs then. The fan-out sends the events itself.
 */
class UntilEnded implements AsyncGenerator<never, void> {
  private finish!: (r: IteratorResult<never, void>) => void;
  private readonly ended = new Promise<IteratorResult<never, void>>((r) => (this.finish = r));

  constructor(private readonly end: () => void) {}

  next() {
    return this.ended;
  }

  async return() {
    this.end();
    this.finish(DONE);
    return DONE;
  }

  async throw(err: unknown): Promise<IteratorResult<never, void>> {
    await this.return();
    throw err;
  }

  [Symbol.asyncIterator]() {
    return this;
  }
}
