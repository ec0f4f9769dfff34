import { Migration } from '@mikro-orm/migrations';

/**
 * The counters of the sign-up, sign-in and password-reset rate limits, shared by every
 * instance, in the table layout rate-limiter-flexible's Postgres store expects (key,
 * points, expire in epoch ms). Expired rows are deleted by the store itself.
 */
export class Migration20261201300000_auth_rate_limits extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "auth_rate_limits" ("key" varchar(255) not null, "points" integer not null default 0, "expire" bigint null, constraint "auth_rate_limits_pkey" primary key ("key"));`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "auth_rate_limits";`);
  }
}
