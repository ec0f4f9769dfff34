import type { EntityManager } from '@mikro-orm/postgresql';
import type { Role } from '../modules/identity/user.entity.js';

/** Who is calling. A service token's viewer has `serviceActor` and may run only operations that accept services. */
export interface Viewer {
  userId: string;
  role: Role;
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

/** Runs `fn` in one transaction; `tx.em` is the transactional EntityManager (flushed, then committed). */
export function inTransaction<T>(scope: Scope, fn: (tx: Scope) => Promise<T>): Promise<T> {
  // Spelled out, not spread: a request's context keeps `viewer` in an accessor, which a spread would drop.
  return scope.em.transactional((em) => fn({ em: em as EntityManager, viewer: scope.viewer, meta: scope.meta }));
}

export const systemMeta = (name: string): RequestMeta => ({ requestId: `job:${name}:${Date.now()}`, ip: null, userAgent: null });

/** A person signed in as an administrator (a service token created by an admin is not one). */
export function isHumanAdmin(viewer: Viewer | null | undefined): boolean {
  return !!viewer && viewer.role === ('ADMIN' as Role) && !viewer.serviceActor;
}
