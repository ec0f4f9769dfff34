import { Migration } from '@mikro-orm/migrations';

/**
 * Usage reports: the API token an AI call came with (its own dimension, API_TOKEN), and
 * one NOTIFY per statement that records AI calls, so live usage views move without
 * polling whichever path recorded the call. The column is added only if missing: the
 * AI gateway attributes calls to tokens too, and both changes must apply in any order.
 */
export class Migration20261201600000_usage_reporting extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "prompt_logs" add column if not exists "api_token_id" uuid null;`);
    this.addSql(`create index if not exists "prompt_logs_api_token_id_index" on "prompt_logs" ("api_token_id");`);
    this.addSql(`create index if not exists "prompt_logs_project_id_created_at_index" on "prompt_logs" ("project_id", "created_at");`);
    // Once per INSERT statement (a bulk load is one event), after the rows: who and which
    // projects they concern, so each subscriber hears only of calls they may see. More than
    // 50 users in one statement (a bulk load) is announced without them (admins hear it).
    this.addSql(`create or replace function "steward_usage_recorded"() returns trigger language plpgsql as $$
declare
  users uuid[];
  projects uuid[];
begin
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
    this.addSql(`create trigger "prompt_logs_usage_recorded" after insert on "prompt_logs" referencing new table as added for each statement execute function "steward_usage_recorded"();`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop trigger if exists "prompt_logs_usage_recorded" on "prompt_logs";`);
    this.addSql(`drop function if exists "steward_usage_recorded"();`);
    this.addSql(`drop index if exists "prompt_logs_project_id_created_at_index";`);
  }
}
