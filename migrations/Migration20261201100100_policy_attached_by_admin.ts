import { Migration } from '@mikro-orm/migrations';

/** Whether an admin attached a policy to a project: then only an admin detaches it. */
export class Migration20261201100100_policy_attached_by_admin extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "project_policies" add column "attached_by_admin" boolean not null default false;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "project_policies" drop column "attached_by_admin";`);
  }
}
