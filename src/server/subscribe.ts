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
 * src/server/fanout.ts's).
 */
export function onTopic<T, Args = Record<string, any>>(
  topic: string,
  filter: (subscriber: Subscriber<Args>) => Hears<T>,
): (data: SubscribeResolverData<unknown, Args, Context>) => TopicSource<T> {
  return ({ args, context }) => subscription<T>(context, topic, filter({ ctx: context, args }));
}
