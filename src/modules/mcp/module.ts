import type { AuditService } from '../audit/index.js';
import { defineModule, type ModuleDeps } from '../define-module.js';
import type { McpServerService } from '../infrastructure/index.js';
import type { ProjectService } from '../projects/index.js';
import type { ApprovalService } from '../work/index.js';
import { McpAgentToolbox } from './agent-toolbox.js';
import { mcpEntities, type McpServices } from './index.js';
import { McpRegistryService } from './mcp-registry.service.js';
import { McpToolCallService } from './mcp-tool-call.service.js';
import { McpServerToolsResolver, McpToolCallResolver, McpToolGrantResolver } from './mcp.resolver.js';
import { mcpRoutes } from './mcp.routes.js';
import { remoteTools } from './remote-tools.js';

/** Steward's MCP server (`/mcp`) and its client of the registered remote servers. */
export const mcpModule = defineModule({
  name: 'mcp',
  entities: mcpEntities,
  resolvers: [McpServerToolsResolver, McpToolCallResolver, McpToolGrantResolver],
  create(
    deps: ModuleDeps<{
      audit: AuditService;
      projects: ProjectService;
      approvals: ApprovalService;
      mcpServers: McpServerService;
    }>,
  ): McpServices {
    const mcpRegistry = new McpRegistryService(deps);
    const mcpToolCalls = new McpToolCallService({ ...deps, registry: mcpRegistry });
    mcpToolCalls.install();
    return { mcpRegistry, mcpToolCalls, agentTools: new McpAgentToolbox({ db: deps.db, calls: mcpToolCalls }) };
  },
  /** The heartbeat of remote servers: three probes per MCP_HEARTBEAT_TIMEOUT_SECONDS, so one lost answer is not yet silence. */
  jobs: (services, { config }) => [
    {
      name: 'mcp.heartbeat',
      intervalMs: Math.max(1000, Math.floor((config.MCP_HEARTBEAT_TIMEOUT_SECONDS * 1000) / 3)),
      leaseMs: 120_000,
      run: ({ em }) => services.mcpRegistry.probeAll(em),
    },
  ],
  /** Steward's MCP endpoint (`/mcp`), with the registered servers' tools the caller may call. */
  routes: (services, schema) => mcpRoutes(schema, (orm) => remoteTools(orm, services.mcpToolCalls)),
});
