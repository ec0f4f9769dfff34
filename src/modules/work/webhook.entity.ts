import { Entity, Enum, ManyToOne, Property, Unique, type Opt, type Ref } from '@mikro-orm/core';
import { Field, ObjectType, registerEnumType } from 'type-graphql';
import { TimestampedEntity } from '../../shared/base.entity.js';
import type { SealedSecret } from '../../shared/crypto.js';
import { User } from '../identity/user.entity.js';
import { NotificationType } from './notification.entity.js';

/** What a webhook's body looks like. */
export enum WebhookFormat {
  /** Standard Webhooks' `{ type, timestamp, data }` JSON. */
  STANDARD = 'STANDARD',
  /** A Slack-compatible incoming-webhook message `{ text, blocks }` (Slack, Mattermost, Rocket.Chat, Teams' Slack connector). */
  SLACK = 'SLACK',
}
registerEnumType(WebhookFormat, { name: 'WebhookFormat' });

/** The associated data a webhook's signing secret is sealed with (also used by `keys:rotate`). */
export const webhookSecretContext = (webhookId: string) => `webhook:${webhookId}`;

/**
 * An organisation's outgoing webhook, kept by admins. Notifications of its `types` (all
 * when empty) whose recipient chose the WEBHOOK channel are POSTed to `url`, signed per
 * Standard Webhooks with the secret shown once at creation (stored envelope-encrypted),
 * and retried with backoff like every notification delivery.
 */
@ObjectType({
  simpleResolvers: true,
  description: 'An organisation webhook (admins). Its secret is shown once, when created.',
})
@Entity({ tableName: 'webhooks' })
@Unique({ properties: ['name'] })
export class Webhook extends TimestampedEntity {
  @Field({ description: 'Unique' })
  @Property({ type: 'text' })
  name!: string;

  @Field({ description: 'Where deliveries are POSTed (http or https)' })
  @Property({ type: 'text' })
  url!: string;

  @Field(() => WebhookFormat)
  @Enum({ items: () => WebhookFormat, nativeEnumName: 'webhook_format', default: WebhookFormat.STANDARD })
  format: Opt<WebhookFormat> = WebhookFormat.STANDARD;

  @Field(() => [NotificationType], { description: 'The notification types it receives; empty: all' })
  @Property({ type: 'text[]', default: '{}' })
  types: Opt<NotificationType[]> = [];

  /** `whsec_…`, envelope-encrypted with webhookSecretContext(id). Never exposed. */
  @Property({ type: 'jsonb', hidden: true })
  secret!: SealedSecret;

  @Field(() => Boolean)
  @Property({ type: 'boolean', default: true })
  isActive: Opt<boolean> = true;

  @ManyToOne(() => User, { ref: true, nullable: true, deleteRule: 'set null' })
  createdBy?: Ref<User> | null;
}
