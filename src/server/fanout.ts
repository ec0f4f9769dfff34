import { randomUUID } from 'node:crypto';
import { execute, type DocumentNode, type GraphQLError, type GraphQLFormattedError, type GraphQLSchema } from 'graphql';
import type { WebSocket } from 'ws';

import { EventScope, type TopicSource } from '../events/subscription.js';
import type { Viewer } from '../shared/scope.js';
import { createContext, type Runtime } from './context.js';
import type { FanoutCounter } from './metrics.js';

/** A WebSocket subscription, as the fan-out keeps it: a few fields, no context, no iterator of its own. */
interface Subscriber {
  socket: WebSocket;
  source: TopicSource;
  /** `{"id":"<id>","type":"next","payload":` — the only bytes that differ between subscribers of a group. */
  prefix: Buffer;
  group: Group;
  /** Who it is, as far as a permission check can tell (see viewerKey). */
  viewer: string;
  gone: boolean;
}

/** Subscribers of the same document, operation and variables: one execution serves all who may hear it. */
interface Group {
  key: string;
  topic: string;
  document: DocumentNode;
  operationName: string | undefined;
  variables: Record<string, unknown> | undefined;
  /** By viewer: permission checks run once per viewer, for all its subscribers of the group. */
  members: Map<string, Set<Subscriber>>;
}

export interface FanoutOptions {
  schema: GraphQLSchema;
  runtime: Runtime;
  /** An execution's errors as sent to clients (masked, coded), under the execution's request id. */
  format: (errors: readonly GraphQLError[], requestId: string) => GraphQLFormattedError[];
  /** Sends between two turns of the event loop, so that a large fan-out never blocks it for long. */
  sendsPerTurn: number;
  /** A socket with more than this still unsent is too slow to keep up: it is closed rather than fed. */
  maxBufferedBytes: number;
  /** Executions and messages sent, per topic (metrics). */
  count?: FanoutCounter;
}

export interface SubscribeRequest {
  id: string;
  socket: WebSocket;
  source: TopicSource;
  document: DocumentNode;
  operationName?: string | null;
  variables?: Record<string, unknown> | null;
}

/** Closes a slow consumer: 1013 "Try Again Later", which graphql-ws clients retry (then refetch what they missed). */
const TOO_SLOW = 1013;
const CLOSE_BRACE = Buffer.from('}');

/**
 * Subscription delivery for many sockets. graphql-ws on its own executes the selection
 * and serialises the answer once per subscriber per event (~50 µs each: seconds for
 * 10,000 subscribers). Here an event is handled once per *group* of subscribers with the
 * same document, operation and variables:
 *
 * 1. who may hear it: `hears` once per distinct viewer in the group, the checks of one
 *    event sharing their queries through an EventScope (one read of a project's members
 *    answers all its subscribers);
 * 2. what they receive: the document executed once with the event as root value. Fields
 *    whose answer depends on the viewer read it from the context, which notices: only
 *    then is the event executed again, once per distinct viewer;
 * 3. the same bytes to each, behind its own subscription id, a few hundred sockets per
 *    turn of the event loop; a socket whose unsent backlog passes `maxBufferedBytes` is
 *    closed (a client that reconnects refetches) instead of buffering without bound.
 *
 * Events are handled one at a time in the order the bus received them, so every
 * subscriber sees a topic's events in commit order.
 */
export class Fanout {
  private readonly groups = new Map<string, Group>();
  private readonly topics = new Map<string, { groups: Set<Group>; off: () => void }>();
  private readonly queue: { topic: string; payload: unknown }[] = [];
  private draining = false;
  private readonly documentIds = new WeakMap<DocumentNode, number>();
  private nextDocumentId = 1;
  private subscribers = 0;

  constructor(private readonly options: FanoutOptions) {}

  /** Live subscriptions. */
  get size(): number {
    return this.subscribers;
  }

  /** Registers a subscription; returns its removal (idempotent). */
  add(r: SubscribeRequest): () => void {
    const key = this.groupKey(r);
    let group = this.groups.get(key);
    if (!group) {
      group = {
        key,
        topic: r.source.topic,
        document: r.document,
        operationName: r.operationName ?? undefined,
        variables: r.variables ?? undefined,
        members: new Map(),
      };
      this.groups.set(key, group);
      this.topicOf(group.topic).groups.add(group);
    }
    const viewer = viewerKey(r.source.viewer);
    const sub: Subscriber = {
      socket: r.socket,
      source: r.source,
      prefix: Buffer.from(`{"id":${JSON.stringify(r.id)},"type":"next","payload":`),
      group,
      viewer,
      gone: false,
    };
    let same = group.members.get(viewer);
    if (!same) group.members.set(viewer, (same = new Set()));
    same.add(sub);
    this.subscribers++;
    return () => this.remove(sub);
  }

  private remove(sub: Subscriber) {
    if (sub.gone) return;
    sub.gone = true;
    this.subscribers--;
    const group = sub.group;
    const same = group.members.get(sub.viewer)!;
    same.delete(sub);
    if (!same.size) group.members.delete(sub.viewer);
    if (group.members.size) return;
    this.groups.delete(group.key);
    const topic = this.topics.get(group.topic);
    if (!topic) return;
    topic.groups.delete(group);
    if (!topic.groups.size) {
      topic.off();
      this.topics.delete(group.topic);
    }
  }

  private groupKey(r: SubscribeRequest): string {
    // Parsed documents are cached by source text (ws.ts), so one text is one object.
    let doc = this.documentIds.get(r.document);
    if (!doc) this.documentIds.set(r.document, (doc = this.nextDocumentId++));
    return `${doc}\u0000${r.operationName ?? ''}\u0000${JSON.stringify(r.variables ?? null)}`;
  }

  private topicOf(topic: string) {
    let t = this.topics.get(topic);
    if (!t) {
      const off = this.options.runtime.bus.on(topic, (payload) => {
        this.queue.push({ topic, payload });
        void this.drain();
      });
      this.topics.set(topic, (t = { groups: new Set(), off }));
    }
    return t;
  }

  private async drain() {
    if (this.draining) return;
    this.draining = true;
    try {
      for (let event = this.queue.shift(); event; event = this.queue.shift()) {
        const groups = this.topics.get(event.topic)?.groups;
        if (!groups) continue;
        const scope = new EventScope();
        for (const group of [...groups]) {
          try {
            await this.deliver(group, event.payload, scope);
          } catch (err) {
            this.options.runtime.logger.error(
              { err, module: 'ws', topic: event.topic },
              'subscription delivery failed',
            );
          }
        }
      }
    } finally {
      this.draining = false;
    }
  }

  private async deliver(group: Group, payload: unknown, scope: EventScope) {
    // 1. Who may hear it, asked once per distinct viewer.
    const hearing: Subscriber[][] = [];
    await Promise.all(
      [...group.members.values()].map(async (same) => {
        const subs = [...same];
        const { source } = subs[0]!;
        try {
          if (await source.hears(payload, source.viewer, scope)) hearing.push(subs);
        } catch (err) {
          this.options.runtime.logger.error(
            { err, module: 'ws', topic: group.topic },
            'subscription permission check failed',
          );
        }
      }),
    );
    if (!hearing.length) return;

    // 2. Executed once, unless the answer depends on who asks.
    const first = await this.execute(group, payload, hearing[0]![0]!.source.viewer);
    if (!first.viewerWasRead) return this.send(group.topic, hearing.flat(), first.body);
    await this.send(group.topic, hearing[0]!, first.body);
    for (const subs of hearing.slice(1)) {
      const { body } = await this.execute(group, payload, subs[0]!.source.viewer);
      await this.send(group.topic, subs, body);
    }
  }

  private async execute(
    group: Group,
    payload: unknown,
    viewer: Viewer,
  ): Promise<{ body: Buffer; viewerWasRead: boolean }> {
    this.options.count?.('execution', group.topic, 1);
    const ctx = createContext(this.options.runtime, viewer, { requestId: randomUUID(), ip: null, userAgent: null });
    const result = await execute({
      schema: this.options.schema,
      document: group.document,
      rootValue: payload,
      contextValue: ctx,
      variableValues: group.variables,
      operationName: group.operationName,
    });
    const out = result.errors ? { ...result, errors: this.options.format(result.errors, ctx.meta.requestId) } : result;
    return { body: Buffer.concat([Buffer.from(JSON.stringify(out)), CLOSE_BRACE]), viewerWasRead: ctx.viewerWasRead };
  }

  /** 3. The same bytes to each, `sendsPerTurn` sockets per turn of the event loop. */
  private async send(topic: string, subs: Subscriber[], body: Buffer) {
    let sent = 0;
    for (let i = 0; i < subs.length; i++) {
      if (i > 0 && i % this.options.sendsPerTurn === 0) await new Promise((r) => setImmediate(r));
      const s = subs[i]!;
      if (s.gone || s.socket.readyState !== s.socket.OPEN) continue;
      if (s.socket.bufferedAmount > this.options.maxBufferedBytes) {
        s.socket.close(TOO_SLOW, 'Too slow to keep up: reconnect and refetch');
        continue;
      }
      // Text frame: graphql-ws clients parse strings (a browser would hand a binary frame over as a Blob).
      s.socket.send(Buffer.concat([s.prefix, body]), { binary: false });
      sent++;
    }
    if (sent) this.options.count?.('message', topic, sent);
  }
}

/** What a permission check may depend on: who, with which role, acting as a service or not. */
const viewerKey = (v: Viewer) => `${v.userId}|${v.role}|${v.serviceActor ?? ''}`;
