/**
 * Every module's services, as one type: the intersection of the interfaces each module
 * writes by hand in its index.ts. Type-only: importing it loads no module, so the
 * request context (src/server/context.ts) can name it without pulling in the resolvers.
 */
import type { AiServices } from './ai/index.js';
import type { AnalysisServices } from './analysis/index.js';
import type { AuditServices } from './audit/index.js';
import type { BillingServices } from './billing/index.js';
import type { ExperimentServices } from './experiments/index.js';
import type { GatewayServices } from './gateway/index.js';
import type { IdentityServices } from './identity/index.js';
import type { InfrastructureServices } from './infrastructure/index.js';
import type { McpServices } from './mcp/index.js';
import type { ModelAccessServices } from './model-access/index.js';
import type { ProjectServices } from './projects/index.js';
import type { ReportingServices } from './reporting/index.js';
import type { WorkServices } from './work/index.js';

export type Services = AuditServices &
  IdentityServices &
  ProjectServices &
  InfrastructureServices &
  WorkServices &
  BillingServices &
  ModelAccessServices &
  AiServices &
  ExperimentServices &
  AnalysisServices &
  McpServices &
  ReportingServices &
  GatewayServices;
