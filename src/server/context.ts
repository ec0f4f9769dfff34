import type { EntityManager } from '@mikro-orm/postgresql';

import type { Config } from '../config.js';
import type { MikroORM } from '../db/orm.js';
import type { SqlClient } from '../db/sql.js';
import type { EventBus } from '../events/bus.js';
import type { Scheduler } from '../jobs/scheduler.js';
import type { Services } from '../modules/services.js';
import { Loaders } from '../shared/loaders.js';
import type { Logger } from '../shared/logger.js';
import type { RequestMeta, Scope, Viewer } from '../shared/scope.js';
import { requireViewer } from '../shared/viewer.js';

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
 * Per operation (an HTTP request, a WebSocket operation, or one execution of a
 * subscription's event): a forked EntityManager, fresh DataLoaders, the viewer and the
 * request's metadata.
 */
export interface Context extends Scope {
  loaders: Loaders;
  services: Services;
  runtime: Runtime;
  /**
   * Whether anything has read `viewer` since the context was made. The subscription
   * fan-out executes an event once for every subscriber whose answer cannot depend on
   * who they are, and knows it only this way (see src/server/fanout.ts).
   */
  readonly viewerWasRead: boolean;
}

/**
 * A class, not an object literal with getters: the accessors then live once on the
 * prototype instead of as closures in every context (a WebSocket subscription keeps
 * its context for as long as it lives: memory per socket). The unit of work and the
 * loaders are made on first use, which most subscriptions never reach.
 */
class OperationContext implements Context {
  // Plain properties, not #private: Apollo shallow-copies the context per operation
  // (Object.assign onto the same prototype), which copies these but not #fields.
  private lazyEm?: EntityManager;
  private lazyLoaders?: Loaders;
  private viewerTouched = false;
  readonly services: Services;

  constructor(
    readonly runtime: Runtime,
    private readonly caller: Viewer | null,
    readonly meta: RequestMeta,
  ) {
    this.services = runtime.services;
  }

  get em(): EntityManager {
    return (this.lazyEm ??= this.runtime.orm.em.fork() as EntityManager);
  }

  get loaders(): Loaders {
    return (this.lazyLoaders ??= new Loaders(this.runtime.db));
  }

  get viewer(): Viewer | null {
    this.viewerTouched = true;
    return this.caller;
  }

  get viewerWasRead(): boolean {
    return this.viewerTouched;
  }

  /** The viewer, not counted as a read: see uncountedViewer. */
  viewerUncounted(): Viewer | null {
    return this.caller;
  }
}

export function createContext(runtime: Runtime, viewer: Viewer | null, meta: RequestMeta): Context {
  return new OperationContext(runtime, viewer, meta);
}

/**
 * The viewer, without counting as a read (`viewerRead`): for the auth checker, whose
 * root-operation rule a subscription already passed when it subscribed.
 */
export function uncountedViewer(ctx: Pick<Context, 'viewer'>): Viewer | null {
  return ctx instanceof OperationContext ? ctx.viewerUncounted() : ctx.viewer;
}

/** The viewer of an operation that `@Allow` already required to be signed in (resolvers: prefer `@Viewer()`). */
export function viewerOf(ctx: Pick<Context, 'viewer'>): Viewer {
  return requireViewer(ctx.viewer);
}
