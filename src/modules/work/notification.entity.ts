import { Entity, Enum, Index, ManyToOne, Property, type Opt, type Ref } from '@mikro-orm/core';
import { GraphQLJSON } from 'graphql-scalars';
import { Field, Int, ObjectType, registerEnumType } from 'type-graphql';
import { BaseEntity } from '../../shared/base.entity.js';
import { User } from '../identity/user.entity.js';

/** The notification types. */
export enum NotificationType {
  ALERT = 'ALERT',
  APPROVAL = 'APPROVAL',
  STATUS = 'STATUS',
  ERROR = 'ERROR',
  INFO = 'INFO',
}
export enum NotificationPriority {
  LOW = 'LOW',
  NORMAL = 'NORMAL',
  HIGH = 'HIGH',
  URGENT = 'URGENT',
}
export enum NotificationStatus {
  UNREAD = 'UNREAD',
  READ = 'READ',
  ARCHIVED = 'ARCHIVED',
}
export enum NotificationChannel {
  WEB = 'WEB',
  EMAIL = 'EMAIL',
  PUSH = 'PUSH',
  SMS = 'SMS',
  /** The organisation's webhooks that take the notification's type (one delivery per webhook). */
  WEBHOOK = 'WEBHOOK',
}
/** Where delivery stands: PENDING until sent (retried with backoff), SENT, or FAILED after the last attempt. */
export enum DeliveryStatus {
  PENDING = 'PENDING',
  SENT = 'SENT',
  FAILED = 'FAILED',
}
registerEnumType(NotificationType, { name: 'NotificationType' });
registerEnumType(NotificationPriority, { name: 'NotificationPriority' });
registerEnumType(NotificationStatus, { name: 'NotificationStatus' });
registerEnumType(NotificationChannel, { name: 'NotificationChannel' });
registerEnumType(DeliveryStatus, { name: 'DeliveryStatus' });

/**
 * A message to one user. The row is written in the same transaction as the
 * event it tells of, so it is never lost; delivery (live on WEB, SMTP for EMAIL, a
 * webhook for PUSH and SMS) happens after commit, at `scheduledFor` when given, and is
 * retried with backoff until it succeeds or runs out of attempts (recorded, not dropped).
 */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'notifications' })
@Index({ properties: ['user', 'status'] })
@Index({
  name: 'notifications_delivery_due_index',
  expression: `create index "notifications_delivery_due_index" on "notifications" ("next_attempt_at") where "delivery_status" = 'PENDING'`,
})
export class Notification extends BaseEntity {
  @ManyToOne(() => User, { ref: true, deleteRule: 'cascade' })
  user!: Ref<User>;

  @Field()
  @Property({ type: 'text' })
  title!: string;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  message?: string | null;

  @Field(() => NotificationType)
  @Enum({ items: () => NotificationType, nativeEnumName: 'notification_type' })
  type!: NotificationType;

  @Field(() => NotificationPriority)
  @Enum({
    items: () => NotificationPriority,
    nativeEnumName: 'notification_priority',
    default: NotificationPriority.NORMAL,
  })
  priority: Opt<NotificationPriority> = NotificationPriority.NORMAL;

  @Field(() => NotificationStatus)
  @Enum({ items: () => NotificationStatus, nativeEnumName: 'notification_status', default: NotificationStatus.UNREAD })
  status: Opt<NotificationStatus> = NotificationStatus.UNREAD;

  @Field(() => NotificationChannel)
  @Enum({ items: () => NotificationChannel, nativeEnumName: 'notification_channel', default: NotificationChannel.WEB })
  channel: Opt<NotificationChannel> = NotificationChannel.WEB;

  @Field(() => GraphQLJSON, { nullable: true })
  @Property({ type: 'jsonb', nullable: true })
  data?: unknown;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  readAt?: Date | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  scheduledFor?: Date | null;

  @Field(() => DeliveryStatus)
  @Enum({ items: () => DeliveryStatus, nativeEnumName: 'delivery_status', default: DeliveryStatus.PENDING })
  deliveryStatus: Opt<DeliveryStatus> = DeliveryStatus.PENDING;

  @Field(() => Int)
  @Property({ type: 'integer', default: 0 })
  deliveryAttempts: Opt<number> = 0;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  lastDeliveryError?: string | null;

  /** When the next delivery attempt is due (scheduledFor, then backoff after failures). */
  @Property({ type: 'timestamptz', defaultRaw: 'now()' })
  nextAttemptAt: Opt<Date> = new Date();

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  sentAt?: Date | null;

  /**
   * Set on the delivery of a notification on a further channel (its e-mail beside the
   * WEB one, each webhook's): the notification shown in the inbox. Null on that one.
   */
  @ManyToOne(() => Notification, { ref: true, nullable: true, deleteRule: 'cascade' })
  primary?: Ref<Notification> | null;

  /** The organisation webhook a WEBHOOK delivery goes to (a plain id: webhook.entity.ts imports this file's enums). */
  @Property({ type: 'uuid', nullable: true })
  webhookId?: string | null;
}
