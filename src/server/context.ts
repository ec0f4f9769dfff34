import type { EntityManager } from '@mikro-orm/postgresql';
import type { Config } from '../config.js';
import type { MikroORM } from '../db/orm.js';
import type { SqlClient } from '../db/sql.js';
import type { EventBus } from '../events/bus.js';
import type { Scheduler } from '../jobs/scheduler.js';
import type { Services } from '../modules/index.js';
import { UnauthenticatedError } from '../shared/errors.js';
import { Loaders } from '../shared/loaders.js';
import type { Logger } from '../shared/logger.js';
import type { RequestMeta, Scope, Viewer } from '../shared/scope.js';

/** What lives as long as the process: built once in src/server/app.ts. */
export interface Runtime {
  config: Config;
  logger: Logger;
  orm: MikroORM;
  db: SqlClient;
  bus: EventBus;
  services: Services;
  scheduler: Scheduler;
}

/**
 * Per operation (an HTTP request, or a WebSocket subscribe): a forked EntityManager,
 * fresh DataLoaders, the viewer and the request's metadata. A subscription calls
 * `renew()` before each event so every event gets its own unit of work and loaders.
 */
export interface Context extends Scope {
  loaders: Loaders;
  services: Services;
  runtime: Runtime;
  renew(): void;
}

export function createContext(runtime: Runtime, viewer: Viewer | null, meta: RequestMeta): Context {
  const ctx: Context = {
    em: runtime.orm.em.fork() as EntityManager,
    loaders: new Loaders(runtime.db),
    viewer,
    meta,
    services: runtime.services,
    runtime,
    renew() {
      ctx.em = runtime.orm.em.fork() as EntityManager;
      ctx.loaders = new Loaders(runtime.db);
    },
  };
  return ctx;
}

/** The viewer of an operation that `@Allow` already required to be signed in. */
export function viewerOf(ctx: Pick<Context, 'viewer'>): Viewer {
  if (!ctx.viewer) throw new UnauthenticatedError();
  return ctx.viewer;
}
