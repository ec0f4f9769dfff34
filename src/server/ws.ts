import type { IncomingMessage, Server } from 'node:http';
import type { GraphQLError, GraphQLSchema } from 'graphql';
import { CloseCode, handleProtocols } from 'graphql-ws';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';

import type { Runtime } from './context.js';
import type { ErrorFormatter } from './errors.js';
import { Fanout } from './fanout.js';
import { requestMeta } from './http.js';
import type { QueryLimits } from './limits.js';
import type { Metrics } from './metrics.js';
import { DocumentCache } from './ws/documents.js';
import { startKeepAlive } from './ws/keep-alive.js';
import { createProtocol } from './ws/protocol.js';
import { Revocations } from './ws/revocations.js';
import { SocketAdapter, type SocketState } from './ws/socket.js';

/**
 * graphql-ws on the HTTP server's port and path: a thin transport that wires the pieces
 * in ./ws/ to the `ws` server — the protocol (authentication, limits, operations), the
 * documents' cache, the revocations that close sockets whose credentials ended, the
 * keep-alive sweep, and graphql-ws's view of a socket. Subscriptions are delivered by the
 * fan-out (./fanout.ts), built for tens of thousands of sockets.
 */
export function attachWebSocket(
  server: Server,
  schema: GraphQLSchema,
  runtime: Runtime,
  limits: QueryLimits,
  formatError: ErrorFormatter,
  metrics: Pick<Metrics, 'onFanout' | 'onOperation' | 'onErrors'>,
) {
  const { config, logger } = runtime;
  const wss = new WebSocketServer({
    server,
    path: '/graphql',
    maxPayload: config.WS_MAX_PAYLOAD_BYTES,
    handleProtocols,
  });
  const states = new WeakMap<WebSocket, SocketState>();
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
  const revocations = new Revocations(runtime);
  const protocol = createProtocol({
    schema,
    runtime,
    limits,
    documents: new DocumentCache(schema, limits),
    revocations,
    fanout,
    format,
    metrics,
  });

  const listeners = sharedListeners(states, logger);
  wss.on('connection', (socket, request) => {
    const state = newSocketState(socket, request);
    states.set(socket, state);
    socket.on('error', listeners.onError);
    socket.on('pong', listeners.onPong);
    socket.on('message', listeners.onMessage);
    socket.on('close', listeners.onClose);
    state.closed = protocol.opened(state.adapter, { state });
  });

  const stopKeepAlive = startKeepAlive(wss, states, config.WS_KEEPALIVE_MS, (state, now) =>
    revocations.closeIfExpired(state, now),
  );

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
      revocations.close();
      stopKeepAlive();
      for (const client of wss.clients) client.close(1001, 'Server shutting down');
      await new Promise<void>((r) => wss.close(() => r()));
    },
  };
}

/**
 * The sockets' listeners: shared functions (`this` is the socket), not closures per
 * socket — with tens of thousands of sockets, memory per socket is what counts.
 */
function sharedListeners(states: WeakMap<WebSocket, SocketState>, logger: Runtime['logger']) {
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
  return { onError, onPong, onMessage, onClose };
}

/** A socket's state before connection_init: no viewer yet, the upgrade request's id kept when the client sent one. */
function newSocketState(socket: WebSocket, request: IncomingMessage): SocketState {
  const meta = requestMeta(request);
  return {
    subscriptions: 0,
    socket,
    adapter: new SocketAdapter(socket),
    alive: true,
    pingedAt: 0,
    expiresAt: Infinity,
    meta,
    requestIdGiven: meta.requestId === request.headers['x-request-id'],
    closed: async () => {},
  };
}
