import type { MigrationObject } from '@mikro-orm/core';
import { Migration20261123050656_initial } from './Migration20261123050656_initial.js';
import { Migration20261123051252_projects_and_work } from './Migration20261123051252_projects_and_work.js';
import { Migration20261123055632_ai_and_billing } from './Migration20261123055632_ai_and_billing.js';
import { Migration20261123060000_infrastructure_and_audit } from './Migration20261123060000_infrastructure_and_audit.js';
import { Migration20261123062500_task_project_order_index } from './Migration20261123062500_task_project_order_index.js';
import { Migration20261123063000_experiments_and_analysis } from './Migration20261123063000_experiments_and_analysis.js';
import { Migration20261201200000_metering_sent_calls } from './Migration20261201200000_metering_sent_calls.js';
import { Migration20261201200100_virtual_keys_and_budgets } from './Migration20261201200100_virtual_keys_and_budgets.js';

// The migrations, in order. `npm run migration:create` writes a new file and rewrites this list.
export const migrationsList: MigrationObject[] = [
  { name: 'Migration20261123050656_initial', class: Migration20261123050656_initial },
  { name: 'Migration20261123051252_projects_and_work', class: Migration20261123051252_projects_and_work },
  { name: 'Migration20261123055632_ai_and_billing', class: Migration20261123055632_ai_and_billing },
  { name: 'Migration20261123060000_infrastructure_and_audit', class: Migration20261123060000_infrastructure_and_audit },
  { name: 'Migration20261123062500_task_project_order_index', class: Migration20261123062500_task_project_order_index },
  { name: 'Migration20261123063000_experiments_and_analysis', class: Migration20261123063000_experiments_and_analysis },
  { name: 'Migration20261201200000_metering_sent_calls', class: Migration20261201200000_metering_sent_calls },
  { name: 'Migration20261201200100_virtual_keys_and_budgets', class: Migration20261201200100_virtual_keys_and_budgets },
];
