import { Migration } from '@mikro-orm/migrations';

/**
 * A project's V1, V2 and V3 are made with the project (a trigger, so the projects module
 * need not know of experiments) and backfilled for existing projects: reading them
 * (`projectVersions`) then writes nothing. Tasks are soft-deleted: `deleted_at` keeps a
 * deleted task's approvals and history, and lets an admin restore it.
 */
export class Migration20261201100000_versions_on_create_and_task_soft_delete extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `insert into "versions" ("id", "project_id", "tag") select gen_random_uuid(), p."id", t::"version_tag" from "projects" p cross join unnest(array['V1','V2','V3']) t on conflict ("project_id", "tag") do nothing;`,
    );
    this.addSql(`create function "project_versions_on_create"() returns trigger language plpgsql as $$
begin
  insert into "versions" ("id", "project_id", "tag") select gen_random_uuid(), new."id", t::"version_tag" from unnest(array['V1','V2','V3']) t on conflict ("project_id", "tag") do nothing;
  return new;
end $$;`);
    this.addSql(
      `create trigger "projects_versions_on_create" after insert on "projects" for each row execute function "project_versions_on_create"();`,
    );

    this.addSql(`alter table "tasks" add column "deleted_at" timestamptz null, add column "deleted_by_id" uuid null;`);
    this.addSql(
      `alter table "tasks" add constraint "tasks_deleted_by_id_foreign" foreign key ("deleted_by_id") references "users" ("id") on update cascade on delete set null;`,
    );
    this.addSql(`create index "tasks_deleted_at_index" on "tasks" ("deleted_at") where "deleted_at" is not null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "tasks_deleted_at_index";`);
    this.addSql(`alter table "tasks" drop constraint "tasks_deleted_by_id_foreign";`);
    this.addSql(`delete from "tasks" where "deleted_at" is not null;`);
    this.addSql(`alter table "tasks" drop column "deleted_at", drop column "deleted_by_id";`);
    this.addSql(`drop trigger "projects_versions_on_create" on "projects";`);
    this.addSql(`drop function "project_versions_on_create"();`);
  }
}
