import type { Context } from '../server/context.js';
import { viewerOf } from '../server/context.js';
import type { Viewer } from '../shared/scope.js';

/**
 * The source of a GraphQL subscription field: the topic's events that this subscriber
 * may read (`allow` runs per event, with the subscriber's viewer), each delivered with
 * a fresh unit of work and fresh DataLoaders on the operation's context.
 */
export function subscription<T>(ctx: Context, topic: string, allow: (payload: T, viewer: Viewer) => boolean | Promise<boolean>): AsyncIterableIterator<T> {
  const viewer = viewerOf(ctx);
  return ctx.runtime.bus.subscribe<T, T>(topic, {
    filter: (p) => allow(p, viewer),
    map: (p) => {
      ctx.renew();
      return p;
    },
  });
}
