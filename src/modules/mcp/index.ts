import type { GraphQLSchema } from 'graphql';
import type { JobDefinition } from '../../jobs/scheduler.js';
import type { Route } from '../../server/http.js';
import type { SqlClient } from '../../db/sql.js';
import type { Logger } from '../../shared/logger.js';
import type { AuditService } from '../audit/audit.service.js';
import type { McpServerService } from '../infrastructure/mcp-server.service.js';
import type { ProjectService } from '../projects/project.service.js';
import type { ApprovalService } from '../work/approval.service.js';
import { McpRegistryService } from './mcp-registry.service.js';
import { McpServerTool } from './mcp-server-tool.entity.js';
import { McpToolCall } from './mcp-tool-call.entity.js';
import { McpToolCallService } from './mcp-tool-call.service.js';
import { McpToolGrant } from './mcp-tool-grant.entity.js';
import { McpServerToolsResolver, McpToolCallResolver, McpToolGrantResolver } from './mcp.resolver.js';
import { mcpRoutes } from './mcp.routes.js';
import { remoteTools } from './remote-tools.js';

export const mcpEntities = [McpServerTool, McpToolGrant, McpToolCall];
export const mcpResolvers = [McpServerToolsResolver, McpToolCallResolver, McpToolGrantResolver] as const;

export interface McpDeps {
  config: { MCP_HEARTBEAT_TIMEOUT_SECONDS: number };
  db: SqlClient;
  logger: Logger;
  audit: AuditService;
  projects: ProjectService;
  approvals: ApprovalService;
  mcpServers: McpServerService;
}

/** Steward's MCP server (`/mcp`) and its client of the registered remote servers. */
export function createMcp(d: McpDeps) {
  const mcpRegistry = new McpRegistryService(d);
  const mcpToolCalls = new McpToolCallService({ ...d, registry: mcpRegistry });
  mcpToolCalls.install();
  return { mcpRegistry, mcpToolCalls };
}

export type McpServices = ReturnType<typeof createMcp>;

/** The heartbeat of remote servers: three probes per MCP_HEARTBEAT_TIMEOUT_SECONDS, so one lost answer is not yet silence. */
export function mcpJobs(s: McpServices, d: Pick<McpDeps, 'config'>): JobDefinition[] {
  return [{ name: 'mcp.heartbeat', intervalMs: Math.max(1000, Math.floor((d.config.MCP_HEARTBEAT_TIMEOUT_SECONDS * 1000) / 3)), leaseMs: 120_000, run: ({ em }) => s.mcpRegistry.probeAll(em) }];
}

/** Steward's MCP endpoint (`/mcp`), with the registered servers' tools the caller may call. */
export function createMcpRoutes(s: McpServices, schema: GraphQLSchema): Route[] {
  return mcpRoutes(schema, (orm) => remoteTools(orm, s.mcpToolCalls));
}
