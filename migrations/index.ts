import type { MigrationObject } from '@mikro-orm/core';

import { Migration20261123050656_initial } from './Migration20261123050656_initial.js';
import { Migration20261123051252_projects_and_work } from './Migration20261123051252_projects_and_work.js';
import { Migration20261123055632_ai_and_billing } from './Migration20261123055632_ai_and_billing.js';
import { Migration20261123060000_infrastructure_and_audit } from './Migration20261123060000_infrastructure_and_audit.js';
import { Migration20261123062500_task_project_order_index } from './Migration20261123062500_task_project_order_index.js';
import { Migration20261123063000_experiments_and_analysis } from './Migration20261123063000_experiments_and_analysis.js';
import { Migration20261201100000_versions_on_create_and_task_soft_delete } from './Migration20261201100000_versions_on_create_and_task_soft_delete.js';
import { Migration20261201100100_policy_attached_by_admin } from './Migration20261201100100_policy_attached_by_admin.js';
import { Migration20261201100200_api_token_projects } from './Migration20261201100200_api_token_projects.js';
import { Migration20261201200000_metering_sent_calls } from './Migration20261201200000_metering_sent_calls.js';
import { Migration20261201200100_virtual_keys_and_budgets } from './Migration20261201200100_virtual_keys_and_budgets.js';
import { Migration20261201300000_auth_rate_limits } from './Migration20261201300000_auth_rate_limits.js';
import { Migration20261201400000_app_role_definer_functions } from './Migration20261201400000_app_role_definer_functions.js';
import { Migration20261201500000_mcp_remote_servers } from './Migration20261201500000_mcp_remote_servers.js';
import { Migration20261201500100_mcp_tool_calls } from './Migration20261201500100_mcp_tool_calls.js';
import { Migration20261201600000_usage_reporting } from './Migration20261201600000_usage_reporting.js';
import { Migration20261201700000_notification_routing } from './Migration20261201700000_notification_routing.js';
import { Migration20261202000000_metered_fast_path } from './Migration20261202000000_metered_fast_path.js';
import { Migration20261202100000_model_access_rules } from './Migration20261202100000_model_access_rules.js';
import { Migration20261202200000_message_tool_calls } from './Migration20261202200000_message_tool_calls.js';
import { Migration20261202300000_organisation_settings } from './Migration20261202300000_organisation_settings.js';

// The migrations in timestamp order, the order MikroORM runs them on an empty database (it runs this list as
// given, it does not sort it). `npm run migration:create` writes a new file and rewrites this list;
// test/unit/migrations-list.test.ts fails when it is unsorted or misses a file.
export const migrationsList: MigrationObject[] = [
  { name: 'Migration20261123050656_initial', class: Migration20261123050656_initial },
  { name: 'Migration20261123051252_projects_and_work', class: Migration20261123051252_projects_and_work },
  { name: 'Migration20261123055632_ai_and_billing', class: Migration20261123055632_ai_and_billing },
  { name: 'Migration20261123060000_infrastructure_and_audit', class: Migration20261123060000_infrastructure_and_audit },
  { name: 'Migration20261123062500_task_project_order_index', class: Migration20261123062500_task_project_order_index },
  { name: 'Migration20261123063000_experiments_and_analysis', class: Migration20261123063000_experiments_and_analysis },
  {
    name: 'Migration20261201100000_versions_on_create_and_task_soft_delete',
    class: Migration20261201100000_versions_on_create_and_task_soft_delete,
  },
  { name: 'Migration20261201100100_policy_attached_by_admin', class: Migration20261201100100_policy_attached_by_admin },
  { name: 'Migration20261201100200_api_token_projects', class: Migration20261201100200_api_token_projects },
  { name: 'Migration20261201200000_metering_sent_calls', class: Migration20261201200000_metering_sent_calls },
  { name: 'Migration20261201200100_virtual_keys_and_budgets', class: Migration20261201200100_virtual_keys_and_budgets },
  { name: 'Migration20261201300000_auth_rate_limits', class: Migration20261201300000_auth_rate_limits },
  {
    name: 'Migration20261201400000_app_role_definer_functions',
    class: Migration20261201400000_app_role_definer_functions,
  },
  { name: 'Migration20261201500000_mcp_remote_servers', class: Migration20261201500000_mcp_remote_servers },
  { name: 'Migration20261201500100_mcp_tool_calls', class: Migration20261201500100_mcp_tool_calls },
  { name: 'Migration20261201600000_usage_reporting', class: Migration20261201600000_usage_reporting },
  { name: 'Migration20261201700000_notification_routing', class: Migration20261201700000_notification_routing },
  { name: 'Migration20261202000000_metered_fast_path', class: Migration20261202000000_metered_fast_path },
  { name: 'Migration20261202100000_model_access_rules', class: Migration20261202100000_model_access_rules },
  { name: 'Migration20261202200000_message_tool_calls', class: Migration20261202200000_message_tool_calls },
  { name: 'Migration20261202300000_organisation_settings', class: Migration20261202300000_organisation_settings },
];
