import { ArrayMaxSize, IsUrl, Length, MaxLength } from 'class-validator';
import { Field, InputType } from 'type-graphql';
import { NotificationType } from './notification.entity.js';
import { WebhookFormat } from './webhook.entity.js';

@InputType()
export class CreateWebhookInput {
  @Field({ description: 'Unique, e.g. "ops-slack"' }) @Length(1, 100) name!: string;

  @Field({ description: 'http or https URL the deliveries are POSTed to' })
  @MaxLength(2000)
  @IsUrl(
    { protocols: ['http', 'https'], require_protocol: true, require_tld: false },
    { message: 'url must be an http or https URL' },
  )
  url!: string;

  @Field(() => WebhookFormat, {
    nullable: true,
    description: 'Default: STANDARD (Standard Webhooks JSON); SLACK for a Slack-compatible incoming webhook.',
  })
  format?: WebhookFormat | null;

  @Field(() => [NotificationType], {
    nullable: true,
    description: 'The notification types it receives; empty or omitted: all.',
  })
  @ArrayMaxSize(20)
  types?: NotificationType[] | null;
}
