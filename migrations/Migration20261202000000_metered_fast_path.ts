import { Migration } from '@mikro-orm/migrations';

/**
 * The metered call in two statements (src/modules/billing/ledger.ts):
 * - `steward_fast_path_miss()` aborts the one-statement reservation when any of its checks
 *   fails (SQLSTATE SWMIS), so none of its changes commit and the full, explaining path
 *   runs instead;
 * - the usage trigger does its work in one statement instead of three;
 * - cost alerts of projects: a project's spend reaching 80, 90 or 100% of its daily or
 *   monthly cost limit, once per period, like a user's.
 */
export class Migration20261202000000_metered_fast_path extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create or replace function "steward_fast_path_miss"() returns boolean language plpgsql as $$
begin
  raise exception 'the metered fast path does not apply; the full path decides' using errcode = 'SWMIS';
end $$;`);

    this.addSql(`create or replace function "steward_usage_recorded"() returns trigger language plpgsql as $$
declare
  sent int;
begin
  with rolled as (
    insert into usage_rollup_delta (day, model, provider_id, agent_type, status, requests, input_tokens, output_tokens, cost_usd)
    select (created_at at time zone 'UTC')::date, model, provider_id, agent_type, status, count(*),
           coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0), coalesce(sum(cost_usd), 0)
      from added group by 1, 2, 3, 4, 5
  ), who as (
    select array_agg(distinct user_id) as users, array_agg(distinct project_id) filter (where project_id is not null) as projects from added
  )
  select count(pg_notify('steward_events', json_build_object('topic', 'usage.recorded', 'payload',
           case when cardinality(users) > 50 or coalesce(cardinality(projects), 0) > 50
                then json_build_object('userIds', null, 'projectIds', null)
                else json_build_object('userIds', users, 'projectIds', coalesce(projects, '{}')) end)::text))
    into sent from who where users is not null;
  return null;
end $$;`);

    this.addSql(`alter table "cost_alerts" alter column "user_id" drop not null;`);
    this.addSql(
      `alter table "cost_alerts" add column "project_id" uuid null references "projects" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `create unique index "cost_alerts_project_id_alert_type_period_start_unique" on "cost_alerts" ("project_id", "alert_type", "period_start") where "project_id" is not null;`,
    );
    this.addSql(
      `alter table "cost_alerts" add constraint "cost_alerts_user_or_project" check (("user_id" is null) <> ("project_id" is null));`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "cost_alerts" drop constraint "cost_alerts_user_or_project";`);
    this.addSql(`drop index "cost_alerts_project_id_alert_type_period_start_unique";`);
    this.addSql(`alter table "cost_alerts" drop column "project_id";`);
    this.addSql(`drop function if exists "steward_fast_path_miss"();`);
  }
}
