import type { GraphQLSchema } from 'graphql';

import type { JobDefinition } from '../jobs/scheduler.js';
import type { Route } from '../server/route.js';
import { aiModule } from './ai/module.js';
import { analysisModule } from './analysis/module.js';
import { auditModule } from './audit/module.js';
import { billingModule } from './billing/module.js';
import type { CoreDeps, ModuleDefinition, Seed } from './define-module.js';
import { experimentsModule } from './experiments/module.js';
import { gatewayModule } from './gateway/module.js';
import { identityModule } from './identity/module.js';
import { infrastructureModule } from './infrastructure/module.js';
import { mcpModule } from './mcp/module.js';
import { modelAccessModule } from './model-access/module.js';
import { projectsModule } from './projects/module.js';
import { reportingModule } from './reporting/module.js';
import type { Services } from './services.js';
import { workModule } from './work/module.js';

export type { CoreDeps } from './define-module.js';
export type { Services } from './services.js';

/**
 * Steward's modules, in the order they are created: each module's `create` receives the
 * core deps and the services of the modules above it.
 */
export const modules = [
  auditModule,
  identityModule,
  projectsModule,
  workModule,
  infrastructureModule,
  mcpModule,
  billingModule,
  modelAccessModule,
  aiModule,
  experimentsModule,
  analysisModule,
  reportingModule,
  gatewayModule,
] as const;

// Checked at compile time: what each module's `create` asks for, the core and the modules provide.
// (A module whose deps are not met shows up here as the deps it asked for.)
type Unmet<M = (typeof modules)[number]> =
  M extends ModuleDefinition<infer D, object> ? (CoreDeps & Services extends D ? never : D) : never;
const allDepsMet: [Unmet] extends [never] ? true : Unmet = true;
void allDepsMet;

const all = modules as readonly ModuleDefinition<CoreDeps, object>[];

/** Every resolver class of every module (for the schema). */
export const resolvers = all.flatMap((m) => m.resolvers);

/** Idempotent reference data, per module (see src/db/seed.ts). */
export const referenceSeeds: Seed[] = all.flatMap((m) => m.seeds ?? []);

/** Builds every module's services once; two modules providing the same key is a startup error, not a silent overwrite. */
export function createServices(core: CoreDeps): Services {
  const services: Record<string, unknown> = {};
  const owner = new Map<string, string>(Object.keys(core).map((k) => [k, 'the core deps']));
  // A key may come only once: the core's (config, db, …) and each service's.
  for (const m of all) {
    const made = m.create({ ...core, ...services } as CoreDeps);
    for (const [key, service] of Object.entries(made)) {
      const first = owner.get(key);
      if (first) throw new Error(`module ${m.name} provides "${key}", which ${first} already provided`);
      owner.set(key, `module ${m.name}`);
      services[key] = service;
    }
  }
  return services as unknown as Services;
}

/** Every module's scheduled jobs; each module's `jobs` gets its own services and deps. */
export function createJobs(core: CoreDeps, services: Services): JobDefinition[] {
  return all.flatMap((m) => m.jobs?.(services, { ...core, ...services }) ?? []);
}

/** Every module's plain HTTP endpoints. */
export function createRoutes(services: Services, schema: GraphQLSchema): Route[] {
  return all.flatMap((m) => m.routes?.(services, schema) ?? []);
}
