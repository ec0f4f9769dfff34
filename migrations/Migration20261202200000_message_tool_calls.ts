import { Migration } from '@mikro-orm/migrations';

/**
 * An agent's reply keeps the MCP tool calls its model made on the way to it (name,
 * arguments, outcome, the text fed back to the model, the mcp_tool_calls row and any
 * approval): null when the model called none.
 */
export class Migration20261202200000_message_tool_calls extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "messages" add column "tool_calls" jsonb null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "messages" drop column "tool_calls";`);
  }
}
