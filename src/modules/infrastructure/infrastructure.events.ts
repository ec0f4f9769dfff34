import type { ContainerStatus } from './container.entity.js';
import type { McpServerStatus } from './mcp-server.entity.js';

/** A container was created, changed status, or was asked to (desired status). */
export const CONTAINER_STATUS_CHANGED = 'infrastructure.containerStatusChanged';
/** An MCP server changed status (heartbeat after silence, failure, timeout, disabled). */
export const MCP_SERVER_STATUS_CHANGED = 'infrastructure.mcpServerStatusChanged';

export interface ContainerEvent {
  containerId: string;
  projectId: string;
  status: ContainerStatus;
  desiredStatus: ContainerStatus | null;
}

export interface McpServerEvent {
  mcpServerId: string;
  status: McpServerStatus;
}
