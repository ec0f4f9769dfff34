import { Migration } from '@mikro-orm/migrations';

/**
 * Settings of the organisation that admins change at run time (over GraphQL, audited), one
 * row per key; a key without a row takes its default from the environment. First key:
 * `governance.required` (every AI call must be bound to a task).
 */
export class Migration20261202300000_organisation_settings extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "organisation_settings" (
      "key" text not null primary key,
      "value" jsonb not null,
      "updated_at" timestamptz not null default now(),
      "updated_by" uuid null references "users" ("id") on delete set null);`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "organisation_settings";`);
  }
}
