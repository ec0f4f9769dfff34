import type { EntityManager } from '@mikro-orm/postgresql';
import pg from 'pg';

import type { Logger } from '../shared/logger.js';
import type { EventCounter } from '../shared/metrics-hooks.js';

export type { EventCounter } from '../shared/metrics-hooks.js';

/** The one PostgreSQL channel every Steward instance listens on. */
export const CHANNEL = 'steward_events';
/** PostgreSQL refuses NOTIFY payloads of 8000 bytes or more: events carry ids, not documents. */
const MAX_PAYLOAD = 7900;

export interface BusEvent<T = unknown> {
  topic: string;
  payload: T;
}

type Handler = (payload: unknown) => void;

/**
 * The realtime bus. `publish` inside a transaction is sent with that transaction's
 * connection (`tem.execute`), so PostgreSQL delivers it only after COMMIT and never
 * after ROLLBACK, to every instance that shares the database — including this one,
 * which receives its own events through LISTEN like any other.
 */
export class EventBus {
  private readonly handlers = new Map<string, Set<Handler>>();
  private client?: pg.Client;
  private closed = false;
  private reconnectTimer?: NodeJS.Timeout;
  private connectedBefore = false;
  private readonly reconnected = new Set<() => void>();

  constructor(
    private readonly url: string,
    private readonly logger: Logger,
    private readonly count?: EventCounter,
  ) {}

  async start(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url });
    client.on('notification', (msg) => this.dispatch(msg.payload));
    client.on('error', (err) => {
      this.logger.warn({ err, module: 'events' }, 'LISTEN connection lost; reconnecting');
      this.reconnect();
    });
    await client.connect();
    await client.query(`LISTEN ${CHANNEL}`);
    this.client = client;
    if (this.connectedBefore) for (const h of [...this.reconnected]) h();
    this.connectedBefore = true;
  }

  /**
   * Registers `handler` for each time the LISTEN connection is back after a loss; returns
   * its removal. Events published while it was away are lost: whoever keeps state built
   * from events (e.g. which sockets are still authorised) must read it again then.
   */
  onReconnect(handler: () => void): () => void {
    this.reconnected.add(handler);
    return () => this.reconnected.delete(handler);
  }

  private reconnect() {
    this.client?.removeAllListeners('notification');
    this.client?.end().catch(() => {});
    this.client = undefined;
    if (this.closed || this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.start().catch(() => this.reconnect());
    }, 500);
  }

  /**
   * Publishes `payload` on `topic`. Pass the transaction's EntityManager: the event
   * then leaves only if the transaction commits.
   */
  async publish(em: EntityManager, topic: string, payload: unknown): Promise<void> {
    const text = JSON.stringify({ topic, payload } satisfies BusEvent);
    if (Buffer.byteLength(text) > MAX_PAYLOAD)
      throw new Error(`event ${topic} is too large for NOTIFY (${text.length} bytes)`);
    await em.execute(`SELECT pg_notify(?, ?)`, [CHANNEL, text]);
    this.count?.('published', topic);
  }

  /**
   * Publishes at once, outside any transaction, on the bus's own connection (the one
   * that LISTENs): for events that describe no committed data, such as the chunks of a
   * reply still streaming. Never borrows from a pool, so a caller holding a pooled
   * connection (e.g. inside a transaction) cannot deadlock waiting for another one.
   */
  async publishNow(topic: string, payload: unknown): Promise<void> {
    const text = JSON.stringify({ topic, payload } satisfies BusEvent);
    if (Buffer.byteLength(text) > MAX_PAYLOAD)
      throw new Error(`event ${topic} is too large for NOTIFY (${text.length} bytes)`);
    if (this.closed) return; // shutting down: a reply chunk in flight has no one left to reach
    const client = this.client;
    if (!client) throw new Error('the event bus is not connected');
    // One query at a time on the shared connection (pg deprecates queueing on a busy client).
    const sent = this.notifying.then(() => client.query('SELECT pg_notify($1, $2)', [CHANNEL, text]));
    this.notifying = sent.then(
      () => undefined,
      () => undefined,
    );
    await sent;
    this.count?.('published', topic);
  }
  private notifying: Promise<void> = Promise.resolve();

  /**
   * Runs `fn`, which commits a change and publishes `topic`, and answers once this instance
   * has heard that event back (`match`), so whatever it keeps of the changed thing (a cached
   * key, say) is gone before the caller's next request; other instances hear it within
   * moments. Waits at most `withinMs`: the change is committed either way. `published`
   * tells from fn's result whether it published at all (nothing to wait for otherwise).
   */
  async inForce<T>(
    topic: string,
    match: (payload: unknown) => boolean,
    fn: () => Promise<T>,
    published: (result: T) => boolean = () => true,
    withinMs = 2000,
  ): Promise<T> {
    let heard!: () => void;
    const seen = new Promise<void>((resolve) => (heard = resolve));
    const off = this.on(topic, (p) => match(p) && heard());
    try {
      const result = await fn();
      if (!published(result)) return result;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([seen, new Promise<void>((r) => (timer = setTimeout(r, withinMs)))]);
      clearTimeout(timer);
      return result;
    } finally {
      off();
    }
  }

  /** Registers an in-process handler for a topic; returns its removal. */
  on(topic: string, handler: Handler): () => void {
    let set = this.handlers.get(topic);
    if (!set) this.handlers.set(topic, (set = new Set()));
    set.add(handler);
    return () => {
      set!.delete(handler);
      if (set!.size === 0) this.handlers.delete(topic);
    };
  }

  private dispatch(raw: string | undefined) {
    if (!raw) return;
    let event: BusEvent;
    try {
      event = JSON.parse(raw);
    } catch {
      return;
    }
    const set = this.handlers.get(event.topic);
    if (!set) return;
    for (const h of [...set]) {
      try {
        h(event.payload);
        this.count?.('delivered', event.topic);
      } catch (err) {
        this.logger.error({ err, module: 'events', topic: event.topic }, 'event handler failed');
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.handlers.clear();
    await this.client?.end().catch(() => {});
  }
}
