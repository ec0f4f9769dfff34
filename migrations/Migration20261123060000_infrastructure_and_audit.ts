import { Migration } from '@mikro-orm/migrations';

/**
 * Issue 5, written by hand (partitioning, triggers and functions are beyond the schema
 * generator): the infrastructure tables (containers, MCP servers, watchers and their
 * runs), system logs, and the audit trail rebuilt as a hash-chained, append-only table
 * partitioned by month, keeping every existing event.
 *
 * The audit design (see src/modules/audit/audit-chain.ts):
 * - events are inserted unlinked (seq, prev_hash, hash NULL) in the writer's transaction;
 * - a sealer links committed events one batch at a time under an advisory lock: that one
 *   UPDATE per event, from unlinked to linked with nothing else changed, is the only
 *   change the trigger lets through; every other UPDATE, every DELETE and TRUNCATE (of
 *   the table or of any partition) is refused;
 * - audit_chain_head holds the last link, so a cut-off tail is noticed too;
 * - steward_audit_ensure_partitions() creates the months ahead (a job calls it); a
 *   DEFAULT partition catches anything outside them, so an audited write never fails
 *   for want of a partition.
 */
export class Migration20261123060000_infrastructure_and_audit extends Migration {
  override async up(): Promise<void> {
    // ---------- audit: functions ----------
    this.addSql(`create or replace function steward_audit_guard() returns trigger language plpgsql as $$
begin
  if tg_op = 'INSERT' then
    if new.seq is not null or new.prev_hash is not null or new.hash is not null or new.sealed_at is not null then
      raise exception 'audit_events: an event is inserted unlinked; only the sealer links it' using errcode = 'check_violation';
    end if;
    return new;
  end if;
  if tg_op = 'UPDATE' and old.hash is null and new.hash is not null and new.seq is not null and new.prev_hash is not null and new.sealed_at is not null
     and (to_jsonb(new) - '{seq,prev_hash,hash,sealed_at}'::text[]) = (to_jsonb(old) - '{seq,prev_hash,hash,sealed_at}'::text[]) then
    return new; -- the one-time link by the sealer, nothing else changed
  end if;
  raise exception 'audit_events is append-only: % refused', tg_op using errcode = 'insufficient_privilege';
end $$;`);
    this.addSql(`create or replace function steward_audit_refuse_truncate() returns trigger language plpgsql as $$
begin
  raise exception 'audit_events is append-only: TRUNCATE of % refused', tg_table_name using errcode = 'insufficient_privilege';
end $$;`);

    // ---------- audit: the partitioned table, with the existing rows ----------
    this.addSql(`alter table "audit_events" rename to "audit_events_legacy";`);
    this.addSql(`alter table "audit_events_legacy" drop constraint "audit_events_pkey";`);
    this.addSql(`drop index "audit_events_action_created_at_index";`);
    this.addSql(`drop index "audit_events_entity_type_entity_id_index";`);
    this.addSql(`drop index "audit_events_actor_id_created_at_index";`);
    this.addSql(
      `create table "audit_events" ("id" uuid not null, "created_at" timestamptz not null default now(), "actor_id" uuid null, "actor_label" text not null, "action" text not null, "entity_type" text not null, "entity_id" text null, "before" jsonb null, "after" jsonb null, "outcome" text not null default 'SUCCESS', "request_id" text null, "ip" inet null, "user_agent" text null, "seq" bigint null, "prev_hash" text null, "hash" text null, "sealed_at" timestamptz null, constraint "audit_events_pkey" primary key ("id", "created_at")) partition by range ("created_at");`,
    );

    this
      .addSql(`create or replace function steward_audit_ensure_partitions(since timestamptz, months_ahead int) returns int language plpgsql as $$
declare
  m timestamp := date_trunc('month', least(since, now()) at time zone 'UTC');
  last_month timestamp := date_trunc('month', now() at time zone 'UTC') + make_interval(months => months_ahead);
  part text;
  made int := 0;
begin
  while m <= last_month loop
    part := 'audit_events_' || to_char(m, 'YYYY_MM');
    if to_regclass(part) is null then
      begin
        execute format('create table %I partition of audit_events for values from (%L) to (%L)', part, m at time zone 'UTC', (m + interval '1 month') at time zone 'UTC');
        execute format('create trigger audit_events_no_truncate before truncate on %I for each statement execute function steward_audit_refuse_truncate()', part);
        made := made + 1;
      exception when others then
        -- e.g. the DEFAULT partition already holds rows of that month: the month stays there.
        raise warning 'audit partition % not created: %', part, sqlerrm;
      end;
    end if;
    m := m + interval '1 month';
  end loop;
  return made;
end $$;`);
    this.addSql(
      `select steward_audit_ensure_partitions(coalesce((select min("created_at") from "audit_events_legacy"), now()), 3);`,
    );
    this.addSql(`create table "audit_events_default" partition of "audit_events" default;`);
    this.addSql(
      `create trigger audit_events_no_truncate before truncate on "audit_events_default" for each statement execute function steward_audit_refuse_truncate();`,
    );

    this.addSql(`create index "audit_events_action_created_at_index" on "audit_events" ("action", "created_at");`);
    this.addSql(
      `create index "audit_events_entity_type_entity_id_index" on "audit_events" ("entity_type", "entity_id");`,
    );
    this.addSql(`create index "audit_events_actor_id_created_at_index" on "audit_events" ("actor_id", "created_at");`);
    this.addSql(`create index "audit_events_seq_index" on "audit_events" ("seq");`);
    this.addSql(
      `create index "audit_events_pending_index" on "audit_events" ("created_at", "id") where "hash" is null;`,
    );

    // Kept as they were, in time order; the sealer links them first.
    this
      .addSql(`insert into "audit_events" ("id", "created_at", "actor_id", "actor_label", "action", "entity_type", "entity_id", "before", "after", "outcome", "request_id", "ip", "user_agent")
      select "id", "created_at", "actor_id", "actor_label", "action", "entity_type", "entity_id", "before", "after", "outcome", "request_id", "ip", "user_agent"
        from "audit_events_legacy" order by "created_at", "id";`);
    this.addSql(`drop table "audit_events_legacy";`);

    this.addSql(
      `create trigger audit_events_append_only before insert or update or delete on "audit_events" for each row execute function steward_audit_guard();`,
    );
    this.addSql(
      `create trigger audit_events_no_truncate before truncate on "audit_events" for each statement execute function steward_audit_refuse_truncate();`,
    );

    this.addSql(
      `create table "audit_chain_head" ("id" smallint not null, "seq" bigint not null default 0, "hash" text not null, "updated_at" timestamptz not null default now(), constraint "audit_chain_head_pkey" primary key ("id"), constraint audit_chain_head_single_check check ("id" = 1));`,
    );
    this.addSql(`insert into "audit_chain_head" ("id", "seq", "hash") values (1, 0, repeat('0', 64));`);

    // ---------- system logs ----------
    this.addSql(`create type "system_log_level" as enum ('DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL');`);
    this.addSql(
      `create table "system_logs" ("id" uuid not null, "created_at" timestamptz not null default now(), "level" "system_log_level" not null, "module" text null, "message" text not null, "context" jsonb null, "request_id" text null, "user_id" uuid null, constraint "system_logs_pkey" primary key ("id"));`,
    );
    this.addSql(`create index "system_logs_created_at_index" on "system_logs" ("created_at");`);
    this.addSql(`create index "system_logs_level_created_at_index" on "system_logs" ("level", "created_at");`);
    this.addSql(`create index "system_logs_module_created_at_index" on "system_logs" ("module", "created_at");`);

    // ---------- infrastructure ----------
    this.addSql(`create type "container_status" as enum ('CREATING', 'RUNNING', 'SLEEPING', 'STOPPED', 'ERROR');`);
    this.addSql(`create type "mcp_server_status" as enum ('ACTIVE', 'INACTIVE', 'ERROR');`);

    this.addSql(
      `create table "containers" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "project_id" uuid not null, "name" text not null, "image" text null, "runtime_id" text null, "status" "container_status" not null default 'CREATING', "desired_status" "container_status" null, "desired_at" timestamptz null, "desired_by_id" uuid null, "cpu_limit" double precision not null, "memory_limit_mb" int not null, "preview_url" text null, "last_active_at" timestamptz null, "status_changed_at" timestamptz not null default now(), "status_message" text null, "created_by_id" uuid null, constraint "containers_pkey" primary key ("id"), constraint containers_cpu_limit_check check ("cpu_limit" > 0), constraint containers_memory_limit_check check ("memory_limit_mb" > 0));`,
    );
    this.addSql(
      `alter table "containers" add constraint "containers_project_id_name_unique" unique ("project_id", "name");`,
    );
    this.addSql(`create index "containers_project_id_status_index" on "containers" ("project_id", "status");`);
    this.addSql(
      `create index "containers_running_idle_index" on "containers" ("last_active_at") where "status" = 'RUNNING';`,
    );
    this.addSql(
      `alter table "containers" add constraint "containers_project_id_foreign" foreign key ("project_id") references "projects" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "containers" add constraint "containers_desired_by_id_foreign" foreign key ("desired_by_id") references "users" ("id") on update cascade on delete set null;`,
    );
    this.addSql(
      `alter table "containers" add constraint "containers_created_by_id_foreign" foreign key ("created_by_id") references "users" ("id") on update cascade on delete set null;`,
    );

    this.addSql(
      `create table "mcp_servers" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "name" text not null, "server_type" text not null, "command" text not null, "args" text[] not null default '{}', "environment" jsonb not null default '[]', "capabilities" text[] not null default '{}', "is_active" boolean not null default true, "status" "mcp_server_status" not null default 'INACTIVE', "last_heartbeat_at" timestamptz null, "last_error" text null, "status_changed_at" timestamptz not null default now(), "created_by_id" uuid null, constraint "mcp_servers_pkey" primary key ("id"));`,
    );
    this.addSql(`alter table "mcp_servers" add constraint "mcp_servers_name_unique" unique ("name");`);
    this.addSql(
      `create index "mcp_servers_status_last_heartbeat_at_index" on "mcp_servers" ("status", "last_heartbeat_at");`,
    );
    this.addSql(
      `alter table "mcp_servers" add constraint "mcp_servers_created_by_id_foreign" foreign key ("created_by_id") references "users" ("id") on update cascade on delete set null;`,
    );

    this.addSql(
      `create table "watchers" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "name" text not null, "watcher_type" text not null, "config" jsonb not null default '{}', "is_active" boolean not null default true, "last_run_at" timestamptz null, "last_success_at" timestamptz null, "last_error" text null, "last_error_at" timestamptz null, "run_count" int not null default 0, "error_count" int not null default 0, "consecutive_errors" int not null default 0, "created_by_id" uuid null, constraint "watchers_pkey" primary key ("id"));`,
    );
    this.addSql(`alter table "watchers" add constraint "watchers_name_unique" unique ("name");`);
    this.addSql(
      `alter table "watchers" add constraint "watchers_created_by_id_foreign" foreign key ("created_by_id") references "users" ("id") on update cascade on delete set null;`,
    );

    this.addSql(
      `create table "watcher_runs" ("id" uuid not null, "created_at" timestamptz not null default now(), "watcher_id" uuid not null, "ok" boolean not null, "error" text null, "items_processed" int null, "duration_ms" int null, "details" jsonb null, "reported_by" text null, constraint "watcher_runs_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "watcher_runs_watcher_id_created_at_index" on "watcher_runs" ("watcher_id", "created_at");`,
    );
    this.addSql(
      `alter table "watcher_runs" add constraint "watcher_runs_watcher_id_foreign" foreign key ("watcher_id") references "watchers" ("id") on update cascade on delete cascade;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "watcher_runs" cascade;`);
    this.addSql(`drop table if exists "watchers" cascade;`);
    this.addSql(`drop table if exists "mcp_servers" cascade;`);
    this.addSql(`drop table if exists "containers" cascade;`);
    this.addSql(`drop type "mcp_server_status";`);
    this.addSql(`drop type "container_status";`);
    this.addSql(`drop table if exists "system_logs" cascade;`);
    this.addSql(`drop type "system_log_level";`);
    this.addSql(`drop table if exists "audit_chain_head" cascade;`);

    // Back to one plain table, keeping the events (their links are dropped).
    this.addSql(
      `create table "audit_events_plain" ("id" uuid not null, "created_at" timestamptz not null default now(), "actor_id" uuid null, "actor_label" text not null, "action" text not null, "entity_type" text not null, "entity_id" text null, "before" jsonb null, "after" jsonb null, "outcome" text not null default 'SUCCESS', "request_id" text null, "ip" inet null, "user_agent" text null, constraint "audit_events_plain_pkey" primary key ("id"));`,
    );
    this.addSql(
      `insert into "audit_events_plain" select "id", "created_at", "actor_id", "actor_label", "action", "entity_type", "entity_id", "before", "after", "outcome", "request_id", "ip", "user_agent" from "audit_events";`,
    );
    this.addSql(`drop table "audit_events" cascade;`);
    this.addSql(`drop function steward_audit_ensure_partitions(timestamptz, int);`);
    this.addSql(`drop function steward_audit_guard();`);
    this.addSql(`drop function steward_audit_refuse_truncate();`);
    this.addSql(`alter table "audit_events_plain" rename to "audit_events";`);
    this.addSql(`alter table "audit_events" rename constraint "audit_events_plain_pkey" to "audit_events_pkey";`);
    this.addSql(`create index "audit_events_action_created_at_index" on "audit_events" ("action", "created_at");`);
    this.addSql(
      `create index "audit_events_entity_type_entity_id_index" on "audit_events" ("entity_type", "entity_id");`,
    );
    this.addSql(`create index "audit_events_actor_id_created_at_index" on "audit_events" ("actor_id", "created_at");`);
  }
}
