import { ArrayMaxSize } from 'class-validator';
import { Arg, Ctx, Field, InputType, Mutation, ObjectType, Query, Resolver } from 'type-graphql';
import type { Context } from '../../server/context.js';
import { Viewer } from '../../server/viewer.js';
import { Allow } from '../../shared/allow.js';
import { NotificationChannel, NotificationType } from './notification.entity.js';

@ObjectType('NotificationPreference', {
  simpleResolvers: true,
  description: 'The channels one type of notification reaches you on.',
})
export class NotificationPreferenceView {
  @Field(() => NotificationType) type!: NotificationType;
  @Field(() => [NotificationChannel], {
    description: "WEB (inbox, live), EMAIL (your address), WEBHOOK (the organisation's webhooks for this type).",
  })
  channels!: NotificationChannel[];
  @Field({ description: 'True while you have not chosen (WEB only).' }) isDefault!: boolean;
}

@InputType()
export class SetNotificationPreferenceInput {
  @Field(() => NotificationType) type!: NotificationType;
  @Field(() => [NotificationChannel], { description: 'At least one of WEB, EMAIL, WEBHOOK.' })
  @ArrayMaxSize(3)
  channels!: NotificationChannel[];
}

/** Your own notification preferences (observers too: they change nothing but how you are told). */
@Resolver()
@Allow('OWN_ACCOUNT')
export class NotificationPreferenceResolver {
  @Query(() => [NotificationPreferenceView], { description: 'Your channels for each notification type.' })
  notificationPreferences(@Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.notificationPreferences.list(viewer);
  }

  @Mutation(() => NotificationPreferenceView, {
    description: 'Chooses the channels one type of notification reaches you on.',
  })
  setNotificationPreference(
    @Arg('input') input: SetNotificationPreferenceInput,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
  ) {
    return ctx.services.notificationPreferences.set(ctx, viewer, input.type, input.channels);
  }
}
