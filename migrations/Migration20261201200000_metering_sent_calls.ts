import { Migration } from '@mikro-orm/migrations';

/**
 * Nothing free when an instance dies mid-call: a reservation says when its call was sent
 * to the provider and what to record of it (`call`), so that the expiry job settles a
 * sent call at its reserved amount (logged ERROR, "instance lost") and releases only
 * never-sent ones. And a DEFAULT partition of prompt_logs, so that a missed partition job
 * can never make settlement fail; the partition function moves a month's rows out of
 * the default partition when it creates that month's partition.
 */
export class Migration20261201200000_metering_sent_calls extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `alter table "quota_reservations" add column "sent_at" timestamptz null, add column "call" jsonb null;`,
    );
    this.addSql(`create table if not exists "prompt_logs_default" partition of "prompt_logs" default;`);
    this.addSql(`create or replace function steward_ensure_month_partitions(parent text, ahead int) returns void
      language plpgsql as $$
      declare
        first_day timestamptz;
        part text;
        dflt text := parent || '_default';
      begin
        for i in 0..ahead loop
          first_day := (date_trunc('month', now() at time zone 'UTC') + make_interval(months => i)) at time zone 'UTC';
          part := parent || '_' || to_char(first_day at time zone 'UTC', 'YYYY_MM');
          if to_regclass(quote_ident(part)) is not null then continue; end if;
          if to_regclass(quote_ident(dflt)) is null then
            execute format('create table %I partition of %I for values from (%L) to (%L)', part, parent, first_day, first_day + interval '1 month');
            continue;
          end if;
          -- Rows the default partition took for this month move into the new partition.
          execute format('create temp table steward_moved (like %I) on commit drop', parent);
          execute format('with m as (delete from %I where created_at >= %L and created_at < %L returning *) insert into steward_moved select * from m', dflt, first_day, first_day + interval '1 month');
          execute format('create table %I partition of %I for values from (%L) to (%L)', part, parent, first_day, first_day + interval '1 month');
          execute format('insert into %I select * from steward_moved', parent);
          drop table steward_moved;
        end loop;
      end $$;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "prompt_logs_default";`);
    this.addSql(`alter table "quota_reservations" drop column "sent_at", drop column "call";`);
  }
}
