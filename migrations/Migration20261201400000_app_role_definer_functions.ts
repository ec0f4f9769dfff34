import { Migration } from '@mikro-orm/migrations';

/**
 * The application connects as a role that owns nothing (src/db/app-role.ts), so what
 * its jobs do to the schema goes through functions that run as the owner, each doing
 * one narrow thing:
 * - steward_audit_ensure_partitions (the audit partitions ahead) runs as its owner;
 * - steward_prompt_log_partitions / steward_drop_prompt_log_partition create and drop
 *   prompt-log months, and only partitions of prompt_logs (never an audit partition).
 */
export class Migration20261201400000_app_role_definer_functions extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `alter function steward_audit_ensure_partitions(timestamptz, int) security definer set search_path from current;`,
    );
    this.addSql(`create or replace function steward_prompt_log_partitions(ahead int) returns void
      language plpgsql security definer set search_path from current as $$
      begin
        perform steward_ensure_month_partitions('prompt_logs', ahead);
      end $$;`);
    this.addSql(`create or replace function steward_drop_prompt_log_partition(part text) returns boolean
      language plpgsql security definer set search_path from current as $$
      begin
        if not exists (select 1 from pg_inherits i join pg_class c on c.oid = i.inhrelid join pg_class p on p.oid = i.inhparent
                        where p.relname = 'prompt_logs' and c.relname = part) then
          return false;
        end if;
        execute format('drop table %I', part);
        return true;
      end $$;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop function if exists steward_drop_prompt_log_partition(text);`);
    this.addSql(`drop function if exists steward_prompt_log_partitions(int);`);
    this.addSql(`alter function steward_audit_ensure_partitions(timestamptz, int) security invoker reset search_path;`);
  }
}
