import { Migration } from '@mikro-orm/migrations';

/**
 * Usage reports:
 * - the API token an AI call came with (the API_TOKEN dimension). Added only if missing:
 *   the AI gateway attributes calls to tokens too, and both changes must apply in any order;
 * - the organisation's daily usage per model, provider, agent type and status, kept by
 *   PostgreSQL itself as calls are recorded (whichever code path records them): reports
 *   over the whole organisation read it instead of every prompt log. New rows go to
 *   usage_rollup_delta (append-only: no two calls wait on one row), a job folds them into
 *   usage_rollup; a report sums both;
 * - one NOTIFY per statement that records AI calls (usageRecorded), so live views move
 *   without polling.
 */
export class Migration20261201600000_usage_reporting extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "prompt_logs" add column if not exists "api_token_id" uuid null;`);
    this.addSql(`create index if not exists "prompt_logs_api_token_id_index" on "prompt_logs" ("api_token_id");`);
    this.addSql(
      `create index if not exists "prompt_logs_project_id_created_at_index" on "prompt_logs" ("project_id", "created_at");`,
    );
    this.addSql(`create index if not exists "prompt_logs_created_at_index" on "prompt_logs" ("created_at");`);

    const columns = `"day" date not null, "model" text null, "provider_id" uuid null, "agent_type" text null, "status" "prompt_status" not null,
      "requests" bigint not null, "input_tokens" bigint not null, "output_tokens" bigint not null, "cost_usd" numeric(18,6) not null`;
    this.addSql(`create table "usage_rollup" (${columns});`);
    this.addSql(
      `create unique index "usage_rollup_key" on "usage_rollup" ("day", "model", "provider_id", "agent_type", "status") nulls not distinct;`,
    );
    this.addSql(`create table "usage_rollup_delta" (${columns});`);
    this.addSql(`create index "usage_rollup_delta_day_index" on "usage_rollup_delta" ("day");`);

    // Once per INSERT statement (a bulk load is one event), after the rows. The event names
    // who and which projects the calls concern, so each subscriber hears only of calls they
    // may see; more than 50 users at once (a bulk load) is announced to admins only.
    this.addSql(`create or replace function "steward_usage_recorded"() returns trigger language plpgsql as $$
declare
  users uuid[];
  projects uuid[];
begin
  insert into usage_rollup_delta (day, model, provider_id, agent_type, status, requests, input_tokens, output_tokens, cost_usd)
  select (created_at at time zone 'UTC')::date, model, provider_id, agent_type, status, count(*),
         coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0), coalesce(sum(cost_usd), 0)
    from added group by 1, 2, 3, 4, 5;
  select array_agg(distinct user_id), array_agg(distinct project_id) filter (where project_id is not null) into users, projects from added;
  if users is null then return null; end if;
  if cardinality(users) > 50 or coalesce(cardinality(projects), 0) > 50 then
    users := null;
    projects := null;
  end if;
  perform pg_notify('steward_events', json_build_object('topic', 'usage.recorded',
    'payload', json_build_object('userIds', users, 'projectIds', coalesce(projects, '{}')))::text);
  return null;
end $$;`);
    // The trigger first: it locks out writers until this commits, so the backfill below sees every earlier call and no later one twice.
    this.addSql(
      `create trigger "prompt_logs_usage_recorded" after insert on "prompt_logs" referencing new table as added for each statement execute function "steward_usage_recorded"();`,
    );
    this
      .addSql(`insert into "usage_rollup" (day, model, provider_id, agent_type, status, requests, input_tokens, output_tokens, cost_usd)
      select (created_at at time zone 'UTC')::date, model, provider_id, agent_type, status, count(*),
             coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0), coalesce(sum(cost_usd), 0)
        from prompt_logs group by 1, 2, 3, 4, 5;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop trigger if exists "prompt_logs_usage_recorded" on "prompt_logs";`);
    this.addSql(`drop function if exists "steward_usage_recorded"();`);
    this.addSql(`drop table if exists "usage_rollup_delta";`);
    this.addSql(`drop table if exists "usage_rollup";`);
    this.addSql(`drop index if exists "prompt_logs_created_at_index";`);
    this.addSql(`drop index if exists "prompt_logs_project_id_created_at_index";`);
  }
}
