import type { Viewer } from '../shared/scope.js';
import { requireViewer } from '../shared/viewer.js';

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
 * its events. It is never iterated: src/server/fanout.ts reads `topic` and `hears` and
 * executes each event once per group of like subscribers. (graphql-js requires the
 * subscribe resolver to return an AsyncIterable, hence the interface.)
 */
export class TopicSource<T = unknown> implements AsyncIterable<T> {
  constructor(
    readonly topic: string,
    readonly viewer: Viewer,
    readonly hears: Hears<T>,
  ) {}

  [Symbol.asyncIterator](): AsyncIterator<T> {
    throw new Error(`subscriptions to ${this.topic} are delivered by the WebSocket fan-out, not iterated`);
  }
}

/** A subscription of the operation's (signed-in) viewer to `topic`, filtered by `hears`. */
export function subscription<T>(
  ctx: { readonly viewer: Viewer | null },
  topic: string,
  hears: Hears<T>,
): TopicSource<T> {
  return new TopicSource<T>(topic, requireViewer(ctx.viewer), hears);
}
