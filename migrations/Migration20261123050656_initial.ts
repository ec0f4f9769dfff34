import { Migration } from '@mikro-orm/migrations';

export class Migration20261123050656_initial extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create type "role" as enum ('ADMIN', 'USER', 'OBSERVER');`);
    this.addSql(`create type "user_status" as enum ('ACTIVE', 'INACTIVE', 'SUSPENDED');`);
    this.addSql(`create type "tier" as enum ('BASIC', 'PREMIUM', 'VIP');`);
    this.addSql(
      `create table "audit_events" ("id" uuid not null, "created_at" timestamptz not null default now(), "actor_id" uuid null, "actor_label" text not null, "action" text not null, "entity_type" text not null, "entity_id" text null, "before" jsonb null, "after" jsonb null, "outcome" text not null default 'SUCCESS', "request_id" text null, "ip" inet null, "user_agent" text null, constraint "audit_events_pkey" primary key ("id"));`,
    );
    this.addSql(`create index "audit_events_action_created_at_index" on "audit_events" ("action", "created_at");`);
    this.addSql(
      `create index "audit_events_entity_type_entity_id_index" on "audit_events" ("entity_type", "entity_id");`,
    );
    this.addSql(`create index "audit_events_actor_id_created_at_index" on "audit_events" ("actor_id", "created_at");`);

    this.addSql(
      `create table "job_state" ("name" text not null, "locked_until" timestamptz not null, "last_started_at" timestamptz null, "last_finished_at" timestamptz null, "runs" int not null default 0, "failures" int not null default 0, "last_error" text null, "last_owner" text null, constraint "job_state_pkey" primary key ("name"));`,
    );

    this.addSql(
      `create table "users" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "email" text not null, "username" text not null, "name" text null, "password_hash" text not null, "role" "role" not null default 'USER', "status" "user_status" not null default 'ACTIVE', "tier" "tier" not null default 'BASIC', "verified" boolean not null default false, "totp_secret" jsonb null, "totp_enabled" boolean not null default false, "totp_last_step" bigint null, "failed_login_attempts" int not null default 0, "locked_until" timestamptz null, "is_blocked" boolean not null default false, "blocked_reason" text null, "blocked_at" timestamptz null, "deviation_score" numeric(6,2) not null default 0, "last_activity_at" timestamptz null, "last_login_at" timestamptz null, "preferences" jsonb not null default '{}', constraint "users_pkey" primary key ("id"));`,
    );
    this.addSql(`alter table "users" add constraint "users_email_unique" unique ("email");`);
    this.addSql(`alter table "users" add constraint "users_username_unique" unique ("username");`);
    this.addSql(`create index "users_role_status_index" on "users" ("role", "status");`);

    this.addSql(
      `create table "sessions" ("id" uuid not null, "created_at" timestamptz not null default now(), "user_id" uuid not null, "family_id" uuid not null, "refresh_token_hash" text not null, "expires_at" timestamptz not null, "rotated_at" timestamptz null, "revoked_at" timestamptz null, "revoked_reason" text null, "device" text null, "ip" inet null, "user_agent" text null, "last_used_at" timestamptz null, constraint "sessions_pkey" primary key ("id"));`,
    );
    this.addSql(`create index "sessions_family_id_index" on "sessions" ("family_id");`);
    this.addSql(
      `alter table "sessions" add constraint "sessions_refresh_token_hash_unique" unique ("refresh_token_hash");`,
    );
    this.addSql(`create index "sessions_expires_at_index" on "sessions" ("expires_at");`);
    this.addSql(`create index "sessions_user_id_revoked_at_index" on "sessions" ("user_id", "revoked_at");`);

    this.addSql(
      `create table "password_resets" ("id" uuid not null, "created_at" timestamptz not null default now(), "user_id" uuid not null, "token_hash" text not null, "expires_at" timestamptz not null, "used_at" timestamptz null, constraint "password_resets_pkey" primary key ("id"));`,
    );
    this.addSql(`create index "password_resets_user_id_index" on "password_resets" ("user_id");`);
    this.addSql(
      `alter table "password_resets" add constraint "password_resets_token_hash_unique" unique ("token_hash");`,
    );
    this.addSql(`create index "password_resets_expires_at_index" on "password_resets" ("expires_at");`);

    this.addSql(
      `create table "invitations" ("id" uuid not null, "created_at" timestamptz not null default now(), "code_hash" text not null, "role" "role" not null, "max_uses" int not null, "uses" int not null default 0, "expires_at" timestamptz not null, "email" text null, "created_by_id" uuid null, "revoked_at" timestamptz null, constraint "invitations_pkey" primary key ("id"));`,
    );
    this.addSql(`alter table "invitations" add constraint "invitations_code_hash_unique" unique ("code_hash");`);

    this.addSql(
      `create table "api_tokens" ("id" uuid not null, "created_at" timestamptz not null default now(), "user_id" uuid not null, "name" text not null, "prefix" text not null, "token_hash" text not null, "scopes" text[] not null default '{}', "service_actor" text null, "expires_at" timestamptz null, "revoked_at" timestamptz null, "last_used_at" timestamptz null, constraint "api_tokens_pkey" primary key ("id"));`,
    );
    this.addSql(`create index "api_tokens_user_id_index" on "api_tokens" ("user_id");`);
    this.addSql(`alter table "api_tokens" add constraint "api_tokens_token_hash_unique" unique ("token_hash");`);

    this.addSql(
      `alter table "sessions" add constraint "sessions_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`,
    );

    this.addSql(
      `alter table "password_resets" add constraint "password_resets_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`,
    );

    this.addSql(
      `alter table "invitations" add constraint "invitations_created_by_id_foreign" foreign key ("created_by_id") references "users" ("id") on update cascade on delete set null;`,
    );

    this.addSql(
      `alter table "api_tokens" add constraint "api_tokens_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "sessions" drop constraint "sessions_user_id_foreign";`);

    this.addSql(`alter table "password_resets" drop constraint "password_resets_user_id_foreign";`);

    this.addSql(`alter table "invitations" drop constraint "invitations_created_by_id_foreign";`);

    this.addSql(`alter table "api_tokens" drop constraint "api_tokens_user_id_foreign";`);

    this.addSql(`drop table if exists "audit_events" cascade;`);

    this.addSql(`drop table if exists "job_state" cascade;`);

    this.addSql(`drop table if exists "users" cascade;`);

    this.addSql(`drop table if exists "sessions" cascade;`);

    this.addSql(`drop table if exists "password_resets" cascade;`);

    this.addSql(`drop table if exists "invitations" cascade;`);

    this.addSql(`drop table if exists "api_tokens" cascade;`);

    this.addSql(`drop type "role";`);
    this.addSql(`drop type "user_status";`);
    this.addSql(`drop type "tier";`);
  }
}
