import { Migration } from '@mikro-orm/migrations';

/**
 * Per-project allow lists of registered MCP servers and their tools (optionally gated on
 * a human's approval), and the record of every tool call made through Steward.
 */
export class Migration20261201500100_mcp_tool_calls extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "mcp_tool_grants" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "project_id" uuid not null, "server_id" uuid not null, "tool" text null, "needs_approval" boolean not null default false, "created_by_id" uuid null, constraint "mcp_tool_grants_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create unique index "mcp_tool_grants_unique" on "mcp_tool_grants" ("project_id", "server_id", coalesce("tool", ''));`,
    );
    this.addSql(
      `alter table "mcp_tool_grants" add constraint "mcp_tool_grants_project_id_foreign" foreign key ("project_id") references "projects" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "mcp_tool_grants" add constraint "mcp_tool_grants_server_id_foreign" foreign key ("server_id") references "mcp_servers" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "mcp_tool_grants" add constraint "mcp_tool_grants_created_by_id_foreign" foreign key ("created_by_id") references "users" ("id") on update cascade on delete set null;`,
    );

    this.addSql(
      `create type "mcp_tool_call_status" as enum ('REFUSED', 'AWAITING_APPROVAL', 'APPROVED', 'REJECTED', 'EXPIRED', 'RUNNING', 'SUCCEEDED', 'FAILED');`,
    );
    this.addSql(
      `create table "mcp_tool_calls" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "project_id" uuid null, "server_id" uuid null, "server_name" text not null, "tool" text not null, "caller_id" uuid null, "caller_actor" text null, "arguments" jsonb null, "arguments_digest" text not null, "status" "mcp_tool_call_status" not null, "consumed" boolean not null default false, "approval_id" uuid null, "is_error" boolean null, "result" jsonb null, "error" text null, "duration_ms" int null, "finished_at" timestamptz null, constraint "mcp_tool_calls_pkey" primary key ("id"));`,
    );
    this.addSql(`create index "mcp_tool_calls_project_id_id_index" on "mcp_tool_calls" ("project_id", "id");`);
    this.addSql(`create index "mcp_tool_calls_approval_id_index" on "mcp_tool_calls" ("approval_id");`);
    this.addSql(
      `create index "mcp_tool_calls_open_index" on "mcp_tool_calls" ("caller_id", "arguments_digest") where not "consumed";`,
    );
    this.addSql(
      `alter table "mcp_tool_calls" add constraint "mcp_tool_calls_project_id_foreign" foreign key ("project_id") references "projects" ("id") on update cascade on delete set null;`,
    );
    this.addSql(
      `alter table "mcp_tool_calls" add constraint "mcp_tool_calls_server_id_foreign" foreign key ("server_id") references "mcp_servers" ("id") on update cascade on delete set null;`,
    );
    this.addSql(
      `alter table "mcp_tool_calls" add constraint "mcp_tool_calls_caller_id_foreign" foreign key ("caller_id") references "users" ("id") on update cascade on delete set null;`,
    );
    this.addSql(
      `alter table "mcp_tool_calls" add constraint "mcp_tool_calls_approval_id_foreign" foreign key ("approval_id") references "approvals" ("id") on update cascade on delete set null;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "mcp_tool_calls" cascade;`);
    this.addSql(`drop type if exists "mcp_tool_call_status";`);
    this.addSql(`drop table if exists "mcp_tool_grants" cascade;`);
  }
}
