import { Container } from './container.entity.js';
import type { ContainerService } from './container.service.js';
import { McpServer } from './mcp-server.entity.js';
import type { McpServerService } from './mcp-server.service.js';
import { Watcher, WatcherRun } from './watcher.entity.js';
import type { WatcherService } from './watcher.service.js';

/** The infrastructure module's surface: what other modules and src/db/entities.ts may import. */
export const infrastructureEntities = [Container, McpServer, Watcher, WatcherRun];

export interface InfrastructureServices {
  containers: ContainerService;
  mcpServers: McpServerService;
  watchers: WatcherService;
}

export { Container, ContainerStatus } from './container.entity.js';
export { McpServer, McpServerStatus } from './mcp-server.entity.js';
export { Watcher, WatcherRun } from './watcher.entity.js';
export type { McpServerService } from './mcp-server.service.js';
