import type { Viewer } from '../../shared/scope.js';
import { requireTokenScope } from '../../shared/token-scopes.js';

/**
 * Whether this caller may use MCP at all (Steward's `/mcp` endpoint, `callMcpTool`): a
 * token with scopes needs the `mcp` scope (and the project among its projects, when it
 * names some). What each tool then does is decided by the rules of its GraphQL operation.
 */
export function assertMcpAccess(viewer: Viewer, projectId?: string | null): void {
  requireTokenScope(viewer, 'mcp', projectId);
}
