import type { Viewer } from '../../shared/scope.js';

/**
 * Whether this caller may use MCP at all (Steward's `/mcp` endpoint, `callMcpTool`).
 * Today every signed-in caller may: what each tool then does is decided by the same rules
 * as its GraphQL operation. Token scopes (an `mcp` scope) are enforced here once they
 * exist: the one place to wire them (`tokenAllows(viewer, 'mcp', projectId)`).
 */
export function assertMcpAccess(viewer: Viewer, _projectId?: string | null): void {
  void viewer;
}
