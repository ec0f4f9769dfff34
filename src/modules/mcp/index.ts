import type { McpAgentToolbox } from './agent-toolbox.js';
import type { McpRegistryService } from './mcp-registry.service.js';
import { McpServerTool } from './mcp-server-tool.entity.js';
import { McpToolCall } from './mcp-tool-call.entity.js';
import type { McpToolCallService } from './mcp-tool-call.service.js';
import { McpToolGrant } from './mcp-tool-grant.entity.js';

/** The MCP module's surface: what other modules and src/db/entities.ts may import. */
export const mcpEntities = [McpServerTool, McpToolGrant, McpToolCall];

export interface McpServices {
  /** Steward's client of the registered remote MCP servers (connect, list tools, ping). */
  mcpRegistry: McpRegistryService;
  /** Tool calls through Steward: allow lists, approval gating, the audited record. */
  mcpToolCalls: McpToolCallService;
  /** The registered servers' tools for agents in conversations (the ai module offers them to the model). */
  agentTools: McpAgentToolbox;
}
