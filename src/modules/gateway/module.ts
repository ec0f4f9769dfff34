import type { AuditService } from '../audit/index.js';
import type { MeteringService, ProviderService } from '../billing/index.js';
import { defineModule, type ModuleDeps } from '../define-module.js';
import type { Authenticator, IdentityServices } from '../identity/index.js';
import type { ModelAccess } from '../model-access/index.js';
import type { ProjectService } from '../projects/index.js';
import type { TaskPolicy } from '../work/index.js';
import { gatewayRoutes } from './gateway.routes.js';
import { GatewayService } from './gateway.service.js';
import type { GatewayServices } from './index.js';
import { VirtualKeyManageResolver } from './virtual-key-manage.resolver.js';
import { VirtualKeyResolver } from './virtual-key.js';
import { VirtualKeyService } from './virtual-key.service.js';

/**
 * The AI gateway: /v1/models, /v1/chat/completions, /v1/messages and /v1/embeddings on
 * the API's port; its resolver manages virtual keys (API tokens with gateway rules) and
 * project budgets.
 */
export const gatewayModule = defineModule({
  name: 'gateway',
  entities: [],
  resolvers: [VirtualKeyResolver, VirtualKeyManageResolver],
  create: (
    deps: ModuleDeps<{
      authenticator: Authenticator;
      providers: ProviderService;
      metering: MeteringService;
      taskPolicy: TaskPolicy;
      audit: AuditService;
      credentials: IdentityServices['credentials'];
      projects: ProjectService;
      modelAccess: ModelAccess;
    }>,
  ): GatewayServices => ({ gateway: new GatewayService(deps), virtualKeys: new VirtualKeyService(deps) }),
  routes: (services) => gatewayRoutes(services.gateway),
});
