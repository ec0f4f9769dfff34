import type { AuditService } from '../audit/index.js';
import { defineModule, type ModuleDeps } from '../define-module.js';
import type { UserService } from '../identity/index.js';
import type { ProjectService } from '../projects/index.js';
import type { NotificationService } from '../work/index.js';
import { ContainerResolver, ProjectContainersResolver } from './container.resolver.js';
import { ContainerService } from './container.service.js';
import { infrastructureEntities, type InfrastructureServices } from './index.js';
import { McpServerResolver } from './mcp-server.resolver.js';
import { McpServerService } from './mcp-server.service.js';
import { WatcherResolver, WatcherRunResolver } from './watcher.resolver.js';
import { WatcherService } from './watcher.service.js';

/** Containers, MCP servers and watchers. */
export const infrastructureModule = defineModule({
  name: 'infrastructure',
  entities: infrastructureEntities,
  resolvers: [ContainerResolver, ProjectContainersResolver, McpServerResolver, WatcherResolver, WatcherRunResolver],
  create: (
    deps: ModuleDeps<{
      audit: AuditService;
      projects: ProjectService;
      /** Failed containers and MCP servers are notified. */
      notifications: Pick<NotificationService, 'notify'>;
      users: Pick<UserService, 'activeAdminIds'>;
    }>,
  ): InfrastructureServices => ({
    containers: new ContainerService(deps),
    mcpServers: new McpServerService(deps),
    watchers: new WatcherService(deps),
  }),
  /** Idle containers to sleep (every minute), silent MCP servers to ERROR (every tick). */
  jobs: (services, { config }) => [
    {
      name: 'infrastructure.sleepIdleContainers',
      intervalMs: 60_000,
      run: ({ em }) => services.containers.sleepIdle(em),
    },
    {
      name: 'infrastructure.mcpHeartbeats',
      intervalMs: Math.min(config.JOB_TICK_MS, config.MCP_HEARTBEAT_TIMEOUT_SECONDS * 500),
      run: ({ em }) => services.mcpServers.markSilent(em),
    },
  ],
});
