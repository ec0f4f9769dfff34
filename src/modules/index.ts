import type { EntityManager } from '@mikro-orm/postgresql';
import type { Config } from '../config.js';
import type { SqlClient } from '../db/sql.js';
import type { EventBus } from '../events/bus.js';
import { JobState } from '../jobs/job-state.entity.js';
import type { JobDefinition } from '../jobs/scheduler.js';
import type { Route } from '../server/http.js';
import type { Envelope } from '../shared/crypto.js';
import type { Logger } from '../shared/logger.js';
import type { Mailer } from '../shared/mailer.js';
import { auditEntities, auditJobs, auditResolvers, createAudit } from './audit/index.js';
import { createInfrastructure, infrastructureEntities, infrastructureJobs, infrastructureResolvers } from './infrastructure/index.js';
import { createIdentity, identityEntities, identityJobs, identityResolvers } from './identity/index.js';
import { createProjects, projectEntities, projectResolvers, projectSeeds } from './projects/index.js';
import { createWork, workEntities, workJobs, workResolvers, workRoutes } from './work/index.js';
import { billingEntities, billingJobs, billingResolvers, createBilling, createProviders, providerJobs, providerResolvers, providerSeeds } from './billing/index.js';
import { aiEntities, aiResolvers, aiSeeds, createAi } from './ai/index.js';
import { createExperiments, experimentEntities, experimentResolvers } from './experiments/index.js';
import { analysisEntities, analysisResolvers, createAnalysis } from './analysis/index.js';
import { gatewayModuleRoutes, gatewayResolvers } from './gateway/index.js';

/**
 * The modules' surface, in one place: their entities (for MikroORM), resolvers (for
 * the schema), services (built once per process), scheduled jobs, HTTP routes and
 * reference data.
 */
export const entities = [...identityEntities, ...projectEntities, ...workEntities, ...aiEntities, ...billingEntities, ...infrastructureEntities, ...auditEntities, ...experimentEntities, ...analysisEntities, JobState];

export const resolvers = [...identityResolvers, ...projectResolvers, ...workResolvers, ...providerResolvers, ...billingResolvers, ...aiResolvers, ...infrastructureResolvers, ...auditResolvers, ...experimentResolvers, ...analysisResolvers, ...gatewayResolvers] as const;

/** Idempotent reference data, per module (see src/db/seed.ts). */
export const referenceSeeds: ((em: EntityManager) => Promise<void>)[] = [...projectSeeds, ...providerSeeds, ...aiSeeds];

export interface ServiceDeps {
  config: Config;
  db: SqlClient;
  bus: EventBus;
  envelope: Envelope;
  mailer: Mailer;
  logger: Logger;
  /** Optional metrics hooks (src/server/metrics.ts); reaches the metered pipeline. */
  metrics?: { onAiCall(r: { provider: string; status: 'success' | 'error'; promptTokens?: number; completionTokens?: number; costUsd?: string }): void };
}

export function createServices(d: ServiceDeps) {
  const { audit, systemLogs } = createAudit(d);
  const identity = createIdentity({ ...d, audit });
  const projects = createProjects({ ...d, audit });
  const infrastructure = createInfrastructure({ ...d, audit, projects });
  const work = createWork({ ...d, audit, projects, users: identity.users });
  const providers = createProviders({ ...d, audit });
  const billing = createBilling({ ...d, audit, notifications: work.notifications, users: identity.users, providers });
  const ai = createAi({ ...d, audit, projects, taskPolicy: work.taskPolicy, metering: billing.metering });
  const experiments = createExperiments({ ...d, audit, projects, approvals: work.approvals });
  const analysis = createAnalysis({ ...d, audit, projects });
  return { audit, systemLogs, ...infrastructure, ...identity, projects, ...work, providers, ...billing, ...ai, ...experiments, ...analysis };
}

export type Services = ReturnType<typeof createServices>;

export function createJobs(d: ServiceDeps, services: Services): JobDefinition[] {
  return [...identityJobs(d.db), ...auditJobs(services, d), ...infrastructureJobs(services, { ...d, audit: services.audit, projects: services.projects }), ...workJobs(services, { ...d, audit: services.audit, projects: services.projects, users: services.users }), ...providerJobs(services, d), ...billingJobs(services, d.config), ...services.analysis.jobs()];
}

export function createRoutes(services: Services): Route[] {
  return [...workRoutes(services), ...gatewayModuleRoutes(services)];
}
