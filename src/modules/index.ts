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
import { AuditEvent, AuditResolver, AuditService } from './audit/index.js';
import { createIdentity, identityEntities, identityJobs, identityResolvers } from './identity/index.js';
import { createProjects, projectEntities, projectResolvers, projectSeeds } from './projects/index.js';
import { createWork, workEntities, workJobs, workResolvers, workRoutes } from './work/index.js';
import { aiEntities } from './ai/index.js';
import { billingEntities } from './billing/index.js';

/**
 * The modules' surface, in one place: their entities (for MikroORM), resolvers (for
 * the schema), services (built once per process), scheduled jobs, HTTP routes and
 * reference data.
 */
export const entities = [...identityEntities, ...projectEntities, ...workEntities, ...aiEntities, ...billingEntities, AuditEvent, JobState];

export const resolvers = [...identityResolvers, ...projectResolvers, ...workResolvers, AuditResolver] as const;

/** Idempotent reference data, per module (see src/db/seed.ts). */
export const referenceSeeds: ((em: EntityManager) => Promise<void>)[] = [...projectSeeds];

export interface ServiceDeps {
  config: Config;
  db: SqlClient;
  bus: EventBus;
  envelope: Envelope;
  mailer: Mailer;
  logger: Logger;
}

export function createServices(d: ServiceDeps) {
  const audit = new AuditService();
  const identity = createIdentity({ ...d, audit });
  const projects = createProjects({ ...d, audit });
  const work = createWork({ ...d, audit, projects });
  return { audit, ...identity, projects, ...work };
}

export type Services = ReturnType<typeof createServices>;

export function createJobs(d: ServiceDeps, services: Services): JobDefinition[] {
  return [...identityJobs(d.db), ...workJobs(services, { ...d, audit: services.audit, projects: services.projects })];
}

export function createRoutes(services: Services): Route[] {
  return [...workRoutes(services)];
}
