import type { Context } from '../server/context.js';
import { viewerOf } from '../server/context.js';
import type { Viewer } from '../shared/scope.js';
import type { EventBus } from './bus.js';

/**
 * What one event's permission checks share: `once(key, load)` runs `load` at most once
 * per event, however many subscribers ask. A policy answers "may this viewer hear of
 * it?" for thousands of subscribers from one query (e.g. the project's members) instead
 * of one query each.
 */
export class EventScope {
  private readonly memo = new Map<string, Promise<unknown>>();

  once<T>(key: string, load: () => Promise<T>): Promise<T> {
    let p = this.memo.get(key) as Promise<T> | undefined;
    if (!p) this.memo.set(key, (p = load()));
    return p;
  }
}

/** May this viewer hear of this event? Runs per event and per distinct viewer; share queries through `scope`. */
export type Hears<T> = (payload: T, viewer: Viewer, scope: EventScope) => boolean | Promise<boolean>;

/**
 * The source of a GraphQL subscription field: a topic of the bus and who may hear of
 * its events. Over WebSocket, src/server/fanout.ts reads `topic` and `hears` and never
 * iterates it: it executes each event once per group of like subscribers. Iterated
 * directly (graphql-js `subscribe`), it is a per-subscriber stream, each event with a
 * fresh unit of work and fresh DataLoaders on the operation's context.
 */
export class TopicSource<T = unknown> implements AsyncIterable<T> {
  constructor(
    readonly bus: EventBus,
    readonly topic: string,
    readonly viewer: Viewer,
    readonly hears: Hears<T>,
    private readonly ctx: Context,
  ) {}

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return this.bus.subscribe<T, T>(this.topic, {
      filter: (p) => this.hears(p, this.viewer, new EventScope()),
      map: (p) => {
        this.ctx.renew();
        return p;
      },
    });
  }
}

export function subscription<T>(ctx: Context, topic: string, hears: Hears<T>): TopicSource<T> {
  return new TopicSource<T>(ctx.runtime.bus, topic, viewerOf(ctx), hears, ctx);
}
