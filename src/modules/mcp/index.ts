import type { GraphQLSchema } from 'graphql';
import type { JobDefinition } from '../../jobs/scheduler.js';
import type { Route } from '../../server/http.js';
import type { Logger } from '../../shared/logger.js';
import type { McpServerService } from '../infrastructure/mcp-server.service.js';
import { McpRegistryService } from './mcp-registry.service.js';
import { McpServerTool } from './mcp-server-tool.entity.js';
import { McpServerToolsResolver } from './mcp.resolver.js';
import { mcpRoutes } from './mcp.routes.js';

export const mcpEntities = [McpServerTool];
export const mcpResolvers = [McpServerToolsResolver] as const;

export interface McpDeps {
  config: { MCP_HEARTBEAT_TIMEOUT_SECONDS: number };
  logger: Logger;
  mcpServers: McpServerService;
}

/** Steward's MCP server (`/mcp`) and its client of the registered remote servers. */
export function createMcp(d: McpDeps) {
  return { mcpRegistry: new McpRegistryService(d) };
}

export type McpServices = ReturnType<typeof createMcp>;

/** The heartbeat of remote servers: three probes per MCP_HEARTBEAT_TIMEOUT_SECONDS, so one lost answer is not yet silence. */
export function mcpJobs(s: McpServices, d: Pick<McpDeps, 'config'>): JobDefinition[] {
  return [{ name: 'mcp.heartbeat', intervalMs: Math.max(1000, Math.floor((d.config.MCP_HEARTBEAT_TIMEOUT_SECONDS * 1000) / 3)), leaseMs: 120_000, run: ({ em }) => s.mcpRegistry.probeAll(em) }];
}

/** Steward's MCP endpoint (`/mcp`). */
export function createMcpRoutes(_s: McpServices, schema: GraphQLSchema): Route[] {
  return mcpRoutes(schema);
}
