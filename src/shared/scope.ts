import type { EntityManager } from '@mikro-orm/postgresql';

import type { Role, Tier } from '../modules/identity/user.entity.js';

/** Who is calling. A service token's viewer has `serviceActor` and may run only operations that accept services. */
export interface Viewer {
  userId: string;
  role: Role;
  /** The user's membership tier, as authenticated (who may use which models); absent for viewers made without it (jobs). */
  tier?: Tier;
  /** The session (refresh-token family member) behind an access token. */
  sessionId?: string;
  /** The API token used, when the viewer came with one. */
  apiTokenId?: string;
  /** A service token's system actor name, e.g. `agent:senior-engineer`. */
  serviceActor?: string;
  /** The API token's scopes (src/shared/token-scopes.ts); none: everything its user (or service) may do. */
  scopes?: string[];
  /** The API token's projects; none: every project its user (or service) may reach. */
  projectIds?: string[];
}

export interface RequestMeta {
  requestId: string;
  ip: string | null;
  userAgent: string | null;
}

/**
 * What a service method needs to know of its caller: the unit of work, the viewer and
 * the request's metadata (for the audit trail). Resolvers pass their context; jobs
 * build one for a named system actor.
 */
export interface Scope {
  em: EntityManager;
  viewer: Viewer | null;
  meta: RequestMeta;
}

/**
 * The one way Steward opens a transaction: runs `fn` in it, flushed, then committed (or
 * rolled back when `fn` throws). Given a scope, `fn` gets the scope with the transactional
 * EntityManager (`tx.em`); given a bare EntityManager (jobs, the metered pipeline), it gets
 * the transactional EntityManager.
 */
export function inTransaction<T>(scope: Scope, fn: (tx: Scope) => Promise<T>): Promise<T>;
export function inTransaction<T>(em: EntityManager, fn: (em: EntityManager) => Promise<T>): Promise<T>;
export function inTransaction<T>(
  on: Scope | EntityManager,
  fn: ((tx: Scope) => Promise<T>) | ((em: EntityManager) => Promise<T>),
): Promise<T> {
  if (isScope(on)) {
    const scope = on;
    // Spelled out, not spread: a request's context keeps `viewer` in an accessor, which a spread would drop.
    return scope.em.transactional((em) =>
      (fn as (tx: Scope) => Promise<T>)({ em: em as EntityManager, viewer: scope.viewer, meta: scope.meta }),
    );
  }
  return on.transactional((em) => (fn as (em: EntityManager) => Promise<T>)(em as EntityManager));
}

const isScope = (on: Scope | EntityManager): on is Scope => 'meta' in on && 'viewer' in on;

export const systemMeta = (name: string): RequestMeta => ({
  requestId: `job:${name}:${Date.now()}`,
  ip: null,
  userAgent: null,
});
