import { Migration } from '@mikro-orm/migrations';

/**
 * Who may use which models: rules naming a model (or a `*` pattern) and the tiers,
 * roles and project a caller must match to use it. Few rows, read whole into memory by
 * every instance (and again when one changes), so no index beyond the key.
 */
export class Migration20261202100000_model_access_rules extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "model_access_rules" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "model" text not null, "tiers" text[] not null default '{}', "roles" text[] not null default '{}', "project_id" uuid null, "note" text null, "created_by_id" uuid null, constraint "model_access_rules_pkey" primary key ("id"));`,
    );
    this.addSql(
      `alter table "model_access_rules" add constraint "model_access_rules_project_id_foreign" foreign key ("project_id") references "projects" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "model_access_rules" add constraint "model_access_rules_created_by_id_foreign" foreign key ("created_by_id") references "users" ("id") on update cascade on delete set null;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "model_access_rules" cascade;`);
  }
}
