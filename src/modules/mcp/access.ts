import { ForbiddenError } from '../../shared/errors.js';
import type { Viewer } from '../../shared/scope.js';
import { requireTokenScope, scopesAllow } from '../../shared/token-scopes.js';

/**
 * Whether this caller may use MCP at all (Steward's `/mcp` endpoint, `callMcpTool`): a
 * token with scopes needs the `mcp` scope (and the project among its projects, when it
 * names some). What each tool then does is decided by the rules of its GraphQL operation.
 */
export function assertMcpAccess(viewer: Viewer, projectId?: string | null): void {
  requireTokenScope(viewer, 'mcp', projectId);
}

/**
 * The `notify` tool is the one Steward tool without a GraphQL operation behind it: it
 * writes (a notification, an audit entry), so a token with scopes needs one that allows
 * writing — `write` (every mutation) or `work` (what an agent does about its work).
 */
export function assertMayNotify(viewer: Viewer): void {
  if (scopesAllow(viewer.scopes, 'Mutation', 'notify') || viewer.scopes?.includes('work')) return;
  throw new ForbiddenError(`This API token's scopes do not allow notify (it needs "work" or "write")`);
}
