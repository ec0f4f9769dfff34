import type { GraphQLSchema } from 'graphql';
import type { Route } from '../../server/http.js';
import { mcpRoutes } from './mcp.routes.js';

/** Steward's MCP endpoint (`/mcp`). */
export function createMcpRoutes(schema: GraphQLSchema): Route[] {
  return mcpRoutes(schema);
}
