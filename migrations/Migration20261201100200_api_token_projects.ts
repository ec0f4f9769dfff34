import { Migration } from '@mikro-orm/migrations';

/** The projects an API token may act in (empty: every project its user or service may reach). */
export class Migration20261201100200_api_token_projects extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "api_tokens" add column "project_ids" uuid[] not null default '{}';`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "api_tokens" drop column "project_ids";`);
  }
}
