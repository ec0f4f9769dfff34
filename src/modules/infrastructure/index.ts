import type { EventBus } from '../../events/bus.js';
import type { SqlClient } from '../../db/sql.js';
import type { JobDefinition } from '../../jobs/scheduler.js';
import type { Envelope } from '../../shared/crypto.js';
import type { Logger } from '../../shared/logger.js';
import type { AuditService } from '../audit/audit.service.js';
import type { UserService } from '../identity/user.service.js';
import type { ProjectService } from '../projects/project.service.js';
import type { NotificationService } from '../work/notification.service.js';
import { Container } from './container.entity.js';
import { ContainerResolver, ProjectContainersResolver } from './container.resolver.js';
import { ContainerService, type ContainerLimitsConfig } from './container.service.js';
import { McpServer } from './mcp-server.entity.js';
import { McpServerResolver } from './mcp-server.resolver.js';
import { McpServerService } from './mcp-server.service.js';
import { Watcher, WatcherRun } from './watcher.entity.js';
import { WatcherResolver, WatcherRunResolver } from './watcher.resolver.js';
import { WatcherService } from './watcher.service.js';

export const infrastructureEntities = [Container, McpServer, Watcher, WatcherRun];
export const infrastructureResolvers = [ContainerResolver, ProjectContainersResolver, McpServerResolver, WatcherResolver, WatcherRunResolver] as const;

export interface InfrastructureDeps {
  config: ContainerLimitsConfig & { MCP_HEARTBEAT_TIMEOUT_SECONDS: number; JOB_TICK_MS: number };
  db: SqlClient;
  bus: EventBus;
  envelope: Envelope;
  logger: Logger;
  audit: AuditService;
  projects: ProjectService;
  /** Failed containers and MCP servers are notified. */
  notifications: Pick<NotificationService, 'notify'>;
  users: Pick<UserService, 'activeAdminIds'>;
}

/** Containers, MCP servers and watchers (seeds 001 and 003). */
export function createInfrastructure(d: InfrastructureDeps) {
  return {
    containers: new ContainerService(d),
    mcpServers: new McpServerService(d),
    watchers: new WatcherService(d),
  };
}

export type InfrastructureServices = ReturnType<typeof createInfrastructure>;

/** Idle containers to sleep (every minute), silent MCP servers to ERROR (every tick). */
export function infrastructureJobs(s: InfrastructureServices, d: Pick<InfrastructureDeps, 'config'>): JobDefinition[] {
  return [
    { name: 'infrastructure.sleepIdleContainers', intervalMs: 60_000, run: ({ em }) => s.containers.sleepIdle(em) },
    { name: 'infrastructure.mcpHeartbeats', intervalMs: Math.min(d.config.JOB_TICK_MS, d.config.MCP_HEARTBEAT_TIMEOUT_SECONDS * 500), run: ({ em }) => s.mcpServers.markSilent(em) },
  ];
}

export { Container, ContainerStatus } from './container.entity.js';
export { McpServer, McpServerStatus } from './mcp-server.entity.js';
export { Watcher, WatcherRun } from './watcher.entity.js';
