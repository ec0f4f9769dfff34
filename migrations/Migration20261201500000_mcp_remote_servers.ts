import { Migration } from '@mikro-orm/migrations';

/**
 * MCP servers reached over Streamable HTTP: a url (then no command), request headers whose
 * secret values are sealed like secret environment values, and the tools the server
 * listed when Steward last reached it, with their schemas.
 */
export class Migration20261201500000_mcp_remote_servers extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "mcp_servers" alter column "command" drop not null;`);
    this.addSql(
      `alter table "mcp_servers" add column "url" text null, add column "headers" jsonb not null default '[]';`,
    );
    this.addSql(
      `alter table "mcp_servers" add constraint "mcp_servers_launch_check" check ("command" IS NOT NULL OR "url" IS NOT NULL);`,
    );
    this.addSql(
      `create table "mcp_server_tools" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "server_id" uuid not null, "name" text not null, "title" text null, "description" text null, "input_schema" jsonb not null, "output_schema" jsonb null, "annotations" jsonb null, constraint "mcp_server_tools_pkey" primary key ("id"));`,
    );
    this.addSql(
      `alter table "mcp_server_tools" add constraint "mcp_server_tools_server_id_name_unique" unique ("server_id", "name");`,
    );
    this.addSql(
      `alter table "mcp_server_tools" add constraint "mcp_server_tools_server_id_foreign" foreign key ("server_id") references "mcp_servers" ("id") on update cascade on delete cascade;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "mcp_server_tools" cascade;`);
    this.addSql(`alter table "mcp_servers" drop constraint "mcp_servers_launch_check";`);
    this.addSql(`alter table "mcp_servers" drop column "url", drop column "headers";`);
    this.addSql(`alter table "mcp_servers" alter column "command" set not null;`);
  }
}
