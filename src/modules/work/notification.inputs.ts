import { ArrayMaxSize, ArrayMinSize, IsUUID, Length, MaxLength } from 'class-validator';
import { GraphQLJSON } from 'graphql-scalars';
import { Field, ID, InputType } from 'type-graphql';
import {
  DeliveryStatus,
  NotificationChannel,
  NotificationPriority,
  NotificationStatus,
  NotificationType,
} from './notification.entity.js';

/** Most recipients one `sendNotification` may address. */
export const MAX_RECIPIENTS = 500;

@InputType({ description: 'Filters of `notifications`; all given conditions must hold.' })
export class NotificationWhere {
  @Field(() => [NotificationStatus], {
    nullable: true,
    description: 'Default: UNREAD and READ (archived ones only when asked for).',
  })
  status?: NotificationStatus[] | null;

  @Field(() => NotificationType, { nullable: true }) type?: NotificationType | null;

  @Field(() => NotificationChannel, { nullable: true }) channel?: NotificationChannel | null;

  @Field(() => [DeliveryStatus], { nullable: true, description: 'Where delivery stands (PENDING, SENT, FAILED).' })
  deliveryStatus?: DeliveryStatus[] | null;
}

@InputType()
export class SendNotificationInput {
  @Field(() => [ID], { description: `One notification per user (duplicates ignored), at most ${MAX_RECIPIENTS}.` })
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_RECIPIENTS)
  @IsUUID('all', { each: true, message: 'userIds must be UUIDs' })
  userIds!: string[];

  @Field() @Length(1, 200) title!: string;

  @Field(() => String, { nullable: true }) @MaxLength(5000) message?: string | null;

  @Field(() => NotificationType, { nullable: true, description: 'Default: INFO.' }) type?: NotificationType | null;

  @Field(() => NotificationPriority, { nullable: true, description: 'Default: NORMAL.' })
  priority?: NotificationPriority | null;

  @Field(() => NotificationChannel, {
    nullable: true,
    description: "Default: each recipient's preference for the type (WEB when none).",
  })
  channel?: NotificationChannel | null;

  @Field(() => Date, { nullable: true, description: 'Deliver then rather than now.' }) scheduledFor?: Date | null;

  @Field(() => GraphQLJSON, { nullable: true, description: 'Anything the client needs to act on it (ids, links).' })
  data?: unknown;
}
