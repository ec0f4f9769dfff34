import type { SubscribeResolverData } from 'type-graphql';

import { subscription, type Hears, type TopicSource } from '../events/subscription.js';
import type { Context } from './context.js';

/** What a subscription's filter is made from, once per subscription: the operation's context and arguments. */
export interface Subscriber<Args> {
  ctx: Context;
  args: Args;
}

/**
 * The `subscribe` of a `@Subscription`: the operation's viewer subscribes to `topic`.
 * `filter` runs once when they subscribe (read and normalise the arguments there) and
 * returns who hears of each event (see src/events/subscription.ts; delivery is
 * src/server/fanout.ts's). `allow`, when given, runs first and refuses the subscription
 * by throwing (the viewer may not watch what the arguments name).
 */
export function onTopic<T, Args = Record<string, any>>(
  topic: string,
  filter: (subscriber: Subscriber<Args>) => Hears<T>,
  allow?: (subscriber: Subscriber<Args>) => Promise<unknown>,
): (data: SubscribeResolverData<unknown, Args, Context>) => TopicSource<T> | Promise<TopicSource<T>> {
  const subscribe = (s: Subscriber<Args>) => subscription<T>(s.ctx, topic, filter(s));
  if (!allow) return ({ args, context }) => subscribe({ ctx: context, args });
  return async ({ args, context }) => {
    const s = { ctx: context, args };
    await allow(s);
    return subscribe(s);
  };
}
