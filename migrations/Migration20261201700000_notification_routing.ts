import { Migration } from '@mikro-orm/migrations';

/**
 * Notifications that reach people where they are: per user and notification type, the
 * channels to deliver on (WEB, EMAIL, WEBHOOK); the organisation's outgoing webhooks
 * (Standard Webhooks signatures, secret envelope-encrypted); and, on a notification
 * row, the notification it is a further channel's delivery of (`primary_id`: the inbox
 * lists primaries only) and the webhook it goes to.
 */
export class Migration20261201700000_notification_routing extends Migration {
  override async up(): Promise<void> {
    // Added, not used in this transaction (PostgreSQL allows that inside one).
    this.addSql(`alter type "notification_channel" add value if not exists 'WEBHOOK';`);
    this.addSql(`create type "webhook_format" as enum ('STANDARD', 'SLACK');`);
    this.addSql(
      `create table "webhooks" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "name" text not null, "url" text not null, "format" "webhook_format" not null default 'STANDARD', "types" text[] not null default '{}', "secret" jsonb not null, "is_active" boolean not null default true, "created_by_id" uuid null, constraint "webhooks_pkey" primary key ("id"));`,
    );
    this.addSql(`alter table "webhooks" add constraint "webhooks_name_unique" unique ("name");`);
    this.addSql(
      `alter table "webhooks" add constraint "webhooks_created_by_id_foreign" foreign key ("created_by_id") references "users" ("id") on update cascade on delete set null;`,
    );
    this.addSql(
      `create table "notification_preferences" ("user_id" uuid not null, "type" "notification_type" not null, "channels" text[] not null, "updated_at" timestamptz not null default now(), constraint "notification_preferences_pkey" primary key ("user_id", "type"));`,
    );
    this.addSql(
      `alter table "notification_preferences" add constraint "notification_preferences_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(`alter table "notifications" add column "primary_id" uuid null, add column "webhook_id" uuid null;`);
    this.addSql(
      `alter table "notifications" add constraint "notifications_primary_id_foreign" foreign key ("primary_id") references "notifications" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "notifications" add constraint "notifications_webhook_id_foreign" foreign key ("webhook_id") references "webhooks" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `create index "notifications_primary_id_index" on "notifications" ("primary_id") where "primary_id" is not null;`,
    );
    this.addSql(
      `create index "notifications_webhook_id_index" on "notifications" ("webhook_id") where "webhook_id" is not null;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "notifications" drop column "webhook_id", drop column "primary_id";`);
    this.addSql(`drop table if exists "notification_preferences" cascade;`);
    this.addSql(`drop table if exists "webhooks" cascade;`);
    this.addSql(`drop type "webhook_format";`);
    // PostgreSQL cannot drop an enum value: WEBHOOK stays in notification_channel.
  }
}
