/**
 * Every MikroORM entity, for the ORM and the CLI tools. It imports each module's surface
 * (its index.ts), never its module.ts: knowing the tables must not load the resolvers.
 */
import { JobState } from '../jobs/job-state.entity.js';
import { aiEntities } from '../modules/ai/index.js';
import { analysisEntities } from '../modules/analysis/index.js';
import { auditEntities } from '../modules/audit/index.js';
import { billingEntities } from '../modules/billing/index.js';
import { experimentEntities } from '../modules/experiments/index.js';
import { identityEntities } from '../modules/identity/index.js';
import { infrastructureEntities } from '../modules/infrastructure/index.js';
import { mcpEntities } from '../modules/mcp/index.js';
import { modelAccessEntities } from '../modules/model-access/index.js';
import { projectEntities } from '../modules/projects/index.js';
import { workEntities } from '../modules/work/index.js';

export const entities = [
  ...identityEntities,
  ...projectEntities,
  ...workEntities,
  ...aiEntities,
  ...billingEntities,
  ...infrastructureEntities,
  ...auditEntities,
  ...experimentEntities,
  ...analysisEntities,
  ...mcpEntities,
  ...modelAccessEntities,
  JobState,
];
