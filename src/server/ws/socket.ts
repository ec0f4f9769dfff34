import type { WebSocket as ProtocolSocket } from 'graphql-ws';
import type { WebSocket } from 'ws';

import type { RequestMeta, Viewer } from '../../shared/scope.js';

/** Closes a socket whose credentials were revoked or ran out (graphql-ws reserves 4400–4499 for such codes). */
export const CREDENTIALS_ENDED = 4401;

/** What Steward keeps per socket: as little as possible (tens of thousands of sockets). */
export interface SocketState {
  viewer?: Viewer;
  /** When the socket's session or API token expires (ms; Infinity for a token without expiry). */
  expiresAt: number;
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

/** graphql-ws's `ctx.extra`. */
export interface Extra extends Record<PropertyKey, unknown> {
  state: SocketState;
}

/** graphql-ws's view of a socket: methods on a prototype rather than closures per socket. */
export class SocketAdapter implements ProtocolSocket {
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
export class UntilEnded implements AsyncGenerator<never, void> {
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
