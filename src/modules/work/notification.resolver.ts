import type { GraphQLResolveInfo } from 'graphql';
import sql from 'sql-template-tag';
import {
  Arg,
  Args,
  Ctx,
  Field,
  FieldResolver,
  ID,
  Info,
  Int,
  Mutation,
  ObjectType,
  Query,
  Resolver,
  Root,
  Subscription,
} from 'type-graphql';
import { viewerOf, type Context } from '../../server/context.js';
import { Viewer } from '../../server/viewer.js';
import { Allow } from '../../shared/allow.js';
import { ConnectionType, PageArgs } from '../../shared/connection.js';
import { idOf, readModel, type RowOf } from '../../shared/read-model.js';
import { selectedFields } from '../../shared/selection.js';
import { User } from '../identity/user.entity.js';
import { DeliveryStatus, Notification, NotificationChannel } from './notification.entity.js';
import { NOTIFICATION_RECEIVED, type NotificationReceived } from './notification.events.js';
import { NotificationWhere, SendNotificationInput } from './notification.inputs.js';
import { onTopic } from '../../server/subscribe.js';

const NotificationConnection = ConnectionType(Notification);

@ObjectType({
  simpleResolvers: true,
  description:
    "A notification's delivery on a further channel it was routed to (its e-mail beside the inbox, each webhook's).",
})
export class NotificationDelivery {
  @Field(() => ID) id!: string;
  @Field(() => NotificationChannel) channel!: NotificationChannel;
  @Field(() => DeliveryStatus) deliveryStatus!: DeliveryStatus;
  @Field(() => Int) deliveryAttempts!: number;
  @Field(() => String, { nullable: true }) lastDeliveryError!: string | null;
  @Field(() => Date, { nullable: true }) sentAt!: Date | null;
}

/**
 * Each user's own notifications. Reading and marking them is OWN_ACCOUNT (observers
 * too: it changes nothing but their own inbox); only admins send them by hand.
 */
@Resolver(() => Notification)
@Allow('SIGNED_IN')
export class NotificationResolver {
  @Allow('OWN_ACCOUNT')
  @Query(() => NotificationConnection, {
    description: 'Your notifications that are due (scheduled ones appear at scheduledFor), newest first.',
  })
  notifications(
    @Args() page: PageArgs,
    @Arg('where', () => NotificationWhere, { nullable: true }) where: NotificationWhere | null,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.services.notifications.list(viewer, selectedFields(info, ['edges', 'node']), where ?? {}, page);
  }

  @Allow('OWN_ACCOUNT')
  @Query(() => Int, { description: 'How many of your due notifications are UNREAD.' })
  unreadNotificationCount(@Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.notifications.unreadCount(viewer);
  }

  @Allow('OWN_ACCOUNT')
  @Mutation(() => Notification, { description: "Marks one of your notifications READ (NOT_FOUND for anyone else's)." })
  markNotificationRead(@Arg('id', () => ID) id: string, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.notifications.markRead(ctx, viewer, id);
  }

  @Allow('OWN_ACCOUNT')
  @Mutation(() => Int, { description: 'Marks all your UNREAD notifications READ; returns how many.' })
  markAllNotificationsRead(@Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.notifications.markAllRead(ctx, viewer);
  }

  @Allow('OWN_ACCOUNT')
  @Mutation(() => Notification, { description: "Archives one of your notifications (NOT_FOUND for anyone else's)." })
  archiveNotification(@Arg('id', () => ID) id: string, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.notifications.archive(ctx, viewer, id);
  }

  @Allow('ADMIN')
  @Mutation(() => [Notification], { description: 'Sends a notification to each of the users, now or at scheduledFor.' })
  sendNotification(@Arg('input') input: SendNotificationInput, @Ctx() ctx: Context) {
    return ctx.services.notifications.send(ctx, input);
  }

  @Allow('OWN_ACCOUNT')
  @Subscription(() => Notification, {
    description:
      'Your notifications as they are delivered on the WEB channel (scheduled ones when due). Only ever your own, admins included.',
    subscribe: onTopic<NotificationReceived>(NOTIFICATION_RECEIVED, () => (p, viewer) => p.userId === viewer.userId),
  })
  async notificationReceived(
    @Root() event: NotificationReceived,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    const viewer = viewerOf(ctx);
    return ctx.loaders
      .byId(readModel(Notification), selectedFields(info), sql`t.user_id = ${viewer.userId}::uuid`)
      .load(event.id);
  }

  @FieldResolver(() => [NotificationDelivery], {
    description:
      'Its deliveries on the further channels your preferences named (empty when it went to one channel only).',
  })
  deliveries(@Root() n: RowOf<Notification>, @Ctx() ctx: Context) {
    return ctx.loaders
      .custom('notification.deliveries', (ids: readonly string[]) => ctx.services.notifications.deliveriesOf(ids))
      .load(n.id);
  }

  @FieldResolver(() => User, { description: 'Whom it is for.' })
  user(@Root() n: RowOf<Notification>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders
      .byId(readModel(User), selectedFields(info))
      .load(idOf(n.user as unknown as string | { id: string })!);
  }
}
