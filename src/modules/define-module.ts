import type { EntityManager } from '@mikro-orm/postgresql';
import type { GraphQLSchema } from 'graphql';

import type { Config } from '../config.js';
import type { SqlClient } from '../db/sql.js';
import type { EventBus } from '../events/bus.js';
import type { JobDefinition } from '../jobs/scheduler.js';
import type { Route } from '../server/route.js';
import type { Envelope } from '../shared/crypto.js';
import type { Logger } from '../shared/logger.js';
import type { Mailer } from '../shared/mailer.js';
import type { AiCallMetrics } from '../shared/metrics-hooks.js';

/** What the process gives every module: built once in src/server/app.ts (createRuntime). */
export interface CoreDeps {
  config: Config;
  db: SqlClient;
  bus: EventBus;
  envelope: Envelope;
  mailer: Mailer;
  logger: Logger;
  /** Optional metrics hooks (src/server/metrics.ts); reaches the metered pipeline. */
  metrics?: AiCallMetrics;
}

/**
 * A module's deps: the core, plus the services of other modules it names by hand
 * (`ModuleDeps<{ audit: AuditService }>`). Modules are created in the order of
 * src/modules/index.ts, each receiving the services of the modules before it.
 */
export type ModuleDeps<Needs extends object = object> = CoreDeps & Needs;

/** Idempotent reference data (see src/db/seed.ts). */
export type Seed = (em: EntityManager) => Promise<void>;

/**
 * One module of Steward, as src/modules/index.ts assembles it.
 * - `entities`: its MikroORM entities (also listed, without the resolvers, by src/db/entities.ts);
 * - `resolvers`: its type-graphql resolver classes;
 * - `create(deps)`: its services, once per process; their keys must be unique across modules;
 * - `jobs(services, deps)`: its scheduled jobs; `routes(services, schema)`: its plain HTTP endpoints
 *   (the schema for those that run operations in-process, like /mcp);
 * - `seeds`: its idempotent reference data.
 */
export interface ModuleDefinition<Deps extends CoreDeps = CoreDeps, Provides extends object = object> {
  name: string;
  entities: readonly Function[];
  resolvers: readonly Function[];
  create(deps: Deps): Provides;
  jobs?(services: Provides, deps: Deps): JobDefinition[];
  routes?(services: Provides, schema: GraphQLSchema): Route[];
  seeds?: readonly Seed[];
}

/** Identity at run time; it only makes TypeScript check the module against the contract above. */
export function defineModule<Deps extends CoreDeps, Provides extends object>(
  definition: ModuleDefinition<Deps, Provides>,
): ModuleDefinition<Deps, Provides> {
  return definition;
}
