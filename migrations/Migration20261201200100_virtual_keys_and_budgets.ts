import { Migration } from '@mikro-orm/migrations';

/**
 * API tokens as virtual keys: an optional model allow-list, task or project binding and
 * budget of their own (cost per day and month, tokens per day, requests per minute).
 * Projects get cost limits. Budgets beyond the user's (key, project, organisation) count
 * in `budget_counters`, one row per subject and window, reserved and settled with the
 * user's counters in the same transactions; a reservation lists the subjects it holds.
 */
export class Migration20261201200100_virtual_keys_and_budgets extends Migration {
  override async up(): Promise<void> {
    this
      .addSql(`alter table "api_tokens" add column "allowed_models" text[] null, add column "bound_task_id" uuid null, add column "bound_project_id" uuid null,
      add column "daily_cost_limit_usd" numeric(18,6) null, add column "monthly_cost_limit_usd" numeric(18,6) null,
      add column "daily_token_limit" bigint null, add column "requests_per_minute" int null;`);
    this
      .addSql(`create table "project_budgets" ("project_id" uuid not null, "daily_cost_limit_usd" numeric(18,6) null, "monthly_cost_limit_usd" numeric(18,6) null,
      "updated_at" timestamptz not null default now(), constraint "project_budgets_pkey" primary key ("project_id"));`);
    this.addSql(
      `alter table "project_budgets" add constraint "project_budgets_project_id_foreign" foreign key ("project_id") references "projects" ("id") on update cascade on delete cascade;`,
    );
    this
      .addSql(`create table "budget_counters" ("subject" text not null, "period" text not null, "period_start" timestamptz not null,
      "requests" int not null default 0, "tokens" bigint not null default 0, "cost_usd" numeric(18,6) not null default 0,
      "reserved_requests" int not null default 0, "reserved_tokens" bigint not null default 0, "reserved_cost_usd" numeric(18,6) not null default 0,
      constraint "budget_counters_pkey" primary key ("subject", "period", "period_start"));`);
    this.addSql(`alter table "quota_reservations" add column "subjects" jsonb null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "quota_reservations" drop column "subjects";`);
    this.addSql(`drop table if exists "budget_counters";`);
    this.addSql(`drop table if exists "project_budgets";`);
    this
      .addSql(`alter table "api_tokens" drop column "allowed_models", drop column "bound_task_id", drop column "bound_project_id", drop column "daily_cost_limit_usd",
      drop column "monthly_cost_limit_usd", drop column "daily_token_limit", drop column "requests_per_minute";`);
  }
}
