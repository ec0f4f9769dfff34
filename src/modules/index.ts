import type { EntityManager } from '@mikro-orm/postgresql';
import type { Config } from '../config.js';
import type { SqlClient } from '../db/sql.js';
import type { EventBus } from '../events/bus.js';
import { JobState } from '../jobs/job-state.entity.js';
import type { JobDefinition } from '../jobs/scheduler.js';
import type { Envelope } from '../shared/crypto.js';
import type { Logger } from '../shared/logger.js';
import type { Mailer } from '../shared/mailer.js';
import { AuditEvent, AuditResolver, AuditService } from './audit/index.js';
import { createIdentity, identityEntities, identityJobs, identityResolvers } from './identity/index.js';

/**
 * The modules' surface, in one place: their entities (for MikroORM), resolvers (for
 * the schema), services (built once per process) and scheduled jobs.
 */
export const entities = [...identityEntities, AuditEvent, JobState];

export const resolvers = [...identityResolvers, AuditResolver] as const;

/** Idempotent reference data, per module (see src/db/seed.ts). */
export const referenceSeeds: ((em: EntityManager) => Promise<void>)[] = [];

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
  return { audit, ...identity };
}

export type Services = ReturnType<typeof createServices>;

export function createJobs(d: ServiceDeps, _services: Services): JobDefinition[] {
  return [...identityJobs(d.db)];
}
