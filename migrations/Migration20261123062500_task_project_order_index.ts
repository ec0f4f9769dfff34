import { Migration } from '@mikro-orm/migrations';

/**
 * A project's tasks in id (creation) order, for the nested Project.tasks page (was a scan
 * of the tasks' primary key); and seed 003's GIN index on assigned agents.
 */
export class Migration20261123062500_task_project_order_index extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create index "tasks_project_id_id_index" on "tasks" ("project_id", "id");`);
    this.addSql(`create index "tasks_assigned_agents_index" on "tasks" using gin ("assigned_agents");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "tasks_assigned_agents_index";`);
    this.addSql(`drop index "tasks_project_id_id_index";`);
  }
}
