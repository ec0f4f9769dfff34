import { Migration } from '@mikro-orm/migrations';

export class Migration20261123055632_ai_and_billing extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create type "agent_type" as enum ('DEV_MANAGER', 'PRODUCT_MANAGER', 'DATA_ANALYST', 'SENIOR_ENGINEER', 'ARCHITECT', 'PLATFORM_ENGINEER', 'ASSISTANT');`,
    );
    this.addSql(`create type "provider_type" as enum ('OPENAI', 'ANTHROPIC', 'GOOGLE', 'HUGGINGFACE', 'LOCAL');`);
    this.addSql(`create type "usage_period" as enum ('HOUR', 'DAY', 'MONTH');`);
    this.addSql(`create type "prompt_status" as enum ('SUCCESS', 'BLOCKED', 'ERROR');`);
    this.addSql(
      `create type "cost_alert_type" as enum ('DAILY_80', 'DAILY_90', 'DAILY_100', 'MONTHLY_80', 'MONTHLY_90', 'MONTHLY_100');`,
    );
    this.addSql(`create type "message_role" as enum ('USER', 'ASSISTANT', 'SYSTEM');`);
    this.addSql(
      `create table "agents" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "type" "agent_type" not null, "name" text not null, "description" text null, "system_prompt" text not null, "default_model" text not null, "active" boolean not null default true, constraint "agents_pkey" primary key ("id"));`,
    );
    this.addSql(`alter table "agents" add constraint "agents_type_unique" unique ("type");`);

    this.addSql(
      `create table "knowledge_entries" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "title" text not null, "content" text not null, "category" text null, "metadata" jsonb not null default '{}', "external_vector_id" text null, "active" boolean not null default true, constraint "knowledge_entries_pkey" primary key ("id"));`,
    );
    this.addSql(
      `alter table "knowledge_entries" add constraint "knowledge_entries_external_vector_id_unique" unique ("external_vector_id");`,
    );
    this.addSql(
      `create index "knowledge_entries_fulltext_index" on "knowledge_entries" using gin (to_tsvector('english', "title" || ' ' || "content"));`,
    );
    this.addSql(
      `create index "knowledge_entries_category_active_index" on "knowledge_entries" ("category", "active");`,
    );

    this.addSql(
      `create table "providers" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "name" text not null, "provider_type" "provider_type" not null, "model_name" text not null, "api_endpoint" text null, "active" boolean not null default true, "platform_provided" boolean not null default true, "input_cost_per1k" numeric(18,6) not null, "output_cost_per1k" numeric(18,6) not null, "max_tokens" int not null default 4096, "timeout_seconds" int not null default 60, "platform_key" jsonb null, "platform_key_last4" text null, constraint "providers_pkey" primary key ("id"));`,
    );
    this.addSql(`alter table "providers" add constraint "providers_name_unique" unique ("name");`);

    this.addSql(
      `create table "provider_health" ("provider_id" uuid not null, "is_healthy" boolean not null default true, "last_check_at" timestamptz null, "last_error" text null, "consecutive_failures" int not null default 0, "response_time_ms" int null, "checks" int not null default 0, "successes" int not null default 0, "updated_at" timestamptz not null default now(), constraint "provider_health_pkey" primary key ("provider_id"));`,
    );

    this.addSql(
      `create table "usage_daily" ("id" uuid not null, "created_at" timestamptz not null default now(), "user_id" uuid not null, "provider" text not null, "model" text not null, "date" date not null, "requests" int not null default 0, "tokens_in" bigint not null default 0, "tokens_out" bigint not null default 0, "cost_usd" numeric(18,6) not null default 0, constraint "usage_daily_pkey" primary key ("id"));`,
    );
    this.addSql(
      `alter table "usage_daily" add constraint "usage_daily_user_id_provider_model_date_unique" unique ("user_id", "provider", "model", "date");`,
    );

    this.addSql(
      `create table "usage_counters" ("user_id" uuid not null, "period" "usage_period" not null, "period_start" timestamptz not null, "requests" int not null default 0, "messages" int not null default 0, "tokens" bigint not null default 0, "cost_usd" numeric(18,6) not null default 0, "reserved_requests" int not null default 0, "reserved_tokens" bigint not null default 0, "reserved_cost_usd" numeric(18,6) not null default 0, constraint "usage_counters_pkey" primary key ("user_id", "period", "period_start"));`,
    );

    this.addSql(
      `create table "quota_reservations" ("id" uuid not null, "created_at" timestamptz not null default now(), "user_id" uuid not null, "tokens" int not null, "cost_usd" numeric(18,6) not null, "periods" jsonb not null, "expires_at" timestamptz not null, constraint "quota_reservations_pkey" primary key ("id"));`,
    );
    this.addSql(`create index "quota_reservations_expires_at_index" on "quota_reservations" ("expires_at");`);

    this.addSql(
      `create table "prompt_logs" ("id" uuid not null, "created_at" timestamptz not null default now(), "user_id" uuid not null, "task_id" uuid null, "project_id" uuid null, "conversation_id" uuid null, "provider_id" uuid null, "agent_type" text null, "prompt" text not null, "system_message" text null, "model" text null, "response" text null, "intent" text null, "confidence" numeric(4,3) null, "deviation_delta" numeric(6,2) not null default 0, "score_before" numeric(6,2) null, "score_after" numeric(6,2) null, "prompt_tokens" int null, "completion_tokens" int null, "total_tokens" int null, "response_time_ms" int null, "cost_usd" numeric(18,6) null, "key_source" text null, "ip" inet null, "user_agent" text null, "request_id" text null, "status" "prompt_status" not null, "error_message" text null, constraint "prompt_logs_pkey" primary key ("id", "created_at")) partition by range ("created_at");`,
    );
    // Monthly partitions of a table partitioned by range on created_at, from this month
    // to \`ahead\` months later (UTC months). The partition jobs call it; so does this migration.
    this.addSql(`create or replace function steward_ensure_month_partitions(parent text, ahead int) returns void
      language plpgsql as $$
      declare
        first_day timestamptz;
      begin
        for i in 0..ahead loop
          first_day := (date_trunc('month', now() at time zone 'UTC') + make_interval(months => i)) at time zone 'UTC';
          execute format('create table if not exists %I partition of %I for values from (%L) to (%L)',
            parent || '_' || to_char(first_day at time zone 'UTC', 'YYYY_MM'), parent, first_day, first_day + interval '1 month');
        end loop;
      end $$;`);
    this.addSql(`select steward_ensure_month_partitions('prompt_logs', 2);`);
    this.addSql(`create index "prompt_logs_status_index" on "prompt_logs" ("status");`);
    this.addSql(`create index "prompt_logs_intent_index" on "prompt_logs" ("intent");`);
    this.addSql(`create index "prompt_logs_task_id_index" on "prompt_logs" ("task_id");`);
    this.addSql(`create index "prompt_logs_user_id_created_at_index" on "prompt_logs" ("user_id", "created_at");`);

    this.addSql(
      `create table "cost_records" ("id" uuid not null, "created_at" timestamptz not null default now(), "user_id" uuid not null, "project_id" uuid null, "conversation_id" uuid null, "agent_type" text null, "provider_id" uuid not null, "provider" text not null, "model" text not null, "input_tokens" int not null, "output_tokens" int not null, "input_cost" numeric(18,6) not null, "output_cost" numeric(18,6) not null, "total_cost" numeric(18,6) not null, "prompt_log_id" uuid not null, constraint "cost_records_pkey" primary key ("id"));`,
    );
    this.addSql(`create index "cost_records_project_id_index" on "cost_records" ("project_id");`);
    this.addSql(`create index "cost_records_user_id_created_at_index" on "cost_records" ("user_id", "created_at");`);

    this.addSql(
      `create table "cost_alerts" ("id" uuid not null, "created_at" timestamptz not null default now(), "user_id" uuid not null, "alert_type" "cost_alert_type" not null, "threshold_percentage" int not null, "period_start" timestamptz not null, "spent_usd" numeric(18,6) not null, "limit_usd" numeric(18,6) not null, "acknowledged" boolean not null default false, "acknowledged_at" timestamptz null, constraint "cost_alerts_pkey" primary key ("id"));`,
    );
    this.addSql(
      `alter table "cost_alerts" add constraint "cost_alerts_user_id_alert_type_period_start_unique" unique ("user_id", "alert_type", "period_start");`,
    );

    this.addSql(
      `create table "conversations" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "user_id" uuid not null, "agent_id" uuid not null, "project_id" uuid null, "task_id" uuid null, "provider_id" uuid null, "title" text null, "context" jsonb not null default '{}', "active" boolean not null default true, constraint "conversations_pkey" primary key ("id"));`,
    );
    this.addSql(`create index "conversations_user_id_updated_at_index" on "conversations" ("user_id", "updated_at");`);

    this.addSql(
      `create table "messages" ("id" uuid not null, "created_at" timestamptz not null default now(), "conversation_id" uuid not null, "role" "message_role" not null, "content" text not null, "prompt_tokens" int null, "completion_tokens" int null, "model" text null, "provider_id" uuid null, "latency_ms" int null, "knowledge_entry_ids" text[] not null default '{}', constraint "messages_pkey" primary key ("id"));`,
    );
    this.addSql(`create index "messages_conversation_id_id_index" on "messages" ("conversation_id", "id");`);

    this.addSql(
      `create table "user_provider_keys" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "user_id" uuid not null, "provider_id" uuid not null, "sealed" jsonb not null, "last4" text not null, "active" boolean not null default true, constraint "user_provider_keys_pkey" primary key ("id"));`,
    );
    this.addSql(
      `alter table "user_provider_keys" add constraint "user_provider_keys_user_id_provider_id_unique" unique ("user_id", "provider_id");`,
    );

    this.addSql(
      `create table "user_quotas" ("user_id" uuid not null, "requests_per_hour" int null, "daily_token_limit" bigint null, "monthly_token_limit" bigint null, "monthly_message_limit" int null, "daily_cost_limit_usd" numeric(18,6) null, "monthly_cost_limit_usd" numeric(18,6) null, "updated_at" timestamptz not null default now(), constraint "user_quotas_pkey" primary key ("user_id"));`,
    );

    this.addSql(
      `alter table "provider_health" add constraint "provider_health_provider_id_foreign" foreign key ("provider_id") references "providers" ("id") on update cascade on delete cascade;`,
    );

    this.addSql(
      `alter table "usage_daily" add constraint "usage_daily_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`,
    );

    this.addSql(
      `alter table "usage_counters" add constraint "usage_counters_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`,
    );

    this.addSql(
      `alter table "quota_reservations" add constraint "quota_reservations_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`,
    );

    this.addSql(
      `alter table "prompt_logs" add constraint "prompt_logs_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`,
    );

    this.addSql(
      `alter table "cost_records" add constraint "cost_records_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`,
    );

    this.addSql(
      `alter table "cost_alerts" add constraint "cost_alerts_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`,
    );

    this.addSql(
      `alter table "conversations" add constraint "conversations_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "conversations" add constraint "conversations_agent_id_foreign" foreign key ("agent_id") references "agents" ("id") on update cascade on delete restrict;`,
    );
    this.addSql(
      `alter table "conversations" add constraint "conversations_project_id_foreign" foreign key ("project_id") references "projects" ("id") on update cascade on delete set null;`,
    );
    this.addSql(
      `alter table "conversations" add constraint "conversations_task_id_foreign" foreign key ("task_id") references "tasks" ("id") on update cascade on delete set null;`,
    );
    this.addSql(
      `alter table "conversations" add constraint "conversations_provider_id_foreign" foreign key ("provider_id") references "providers" ("id") on update cascade on delete set null;`,
    );

    this.addSql(
      `alter table "messages" add constraint "messages_conversation_id_foreign" foreign key ("conversation_id") references "conversations" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "messages" add constraint "messages_provider_id_foreign" foreign key ("provider_id") references "providers" ("id") on update cascade on delete set null;`,
    );

    this.addSql(
      `alter table "user_provider_keys" add constraint "user_provider_keys_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "user_provider_keys" add constraint "user_provider_keys_provider_id_foreign" foreign key ("provider_id") references "providers" ("id") on update cascade on delete cascade;`,
    );

    this.addSql(
      `alter table "user_quotas" add constraint "user_quotas_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "conversations" drop constraint "conversations_agent_id_foreign";`);

    this.addSql(`alter table "provider_health" drop constraint "provider_health_provider_id_foreign";`);

    this.addSql(`alter table "conversations" drop constraint "conversations_provider_id_foreign";`);

    this.addSql(`alter table "messages" drop constraint "messages_provider_id_foreign";`);

    this.addSql(`alter table "user_provider_keys" drop constraint "user_provider_keys_provider_id_foreign";`);

    this.addSql(`alter table "messages" drop constraint "messages_conversation_id_foreign";`);

    this.addSql(`drop table if exists "agents" cascade;`);

    this.addSql(`drop table if exists "knowledge_entries" cascade;`);

    this.addSql(`drop table if exists "providers" cascade;`);

    this.addSql(`drop table if exists "provider_health" cascade;`);

    this.addSql(`drop table if exists "usage_daily" cascade;`);

    this.addSql(`drop table if exists "usage_counters" cascade;`);

    this.addSql(`drop table if exists "quota_reservations" cascade;`);

    this.addSql(`drop table if exists "prompt_logs" cascade;`);
    this.addSql(`drop function if exists steward_ensure_month_partitions(text, int);`);

    this.addSql(`drop table if exists "cost_records" cascade;`);

    this.addSql(`drop table if exists "cost_alerts" cascade;`);

    this.addSql(`drop table if exists "conversations" cascade;`);

    this.addSql(`drop table if exists "messages" cascade;`);

    this.addSql(`drop table if exists "user_provider_keys" cascade;`);

    this.addSql(`drop table if exists "user_quotas" cascade;`);

    this.addSql(`drop type "agent_type";`);
    this.addSql(`drop type "provider_type";`);
    this.addSql(`drop type "usage_period";`);
    this.addSql(`drop type "prompt_status";`);
    this.addSql(`drop type "cost_alert_type";`);
    this.addSql(`drop type "message_role";`);
  }
}
