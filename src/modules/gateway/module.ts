import type { MeteringService, ProviderService } from '../billing/index.js';
import { defineModule, type ModuleDeps } from '../define-module.js';
import type { Authenticator } from '../identity/index.js';
import type { TaskPolicy } from '../work/index.js';
import { gatewayRoutes } from './gateway.routes.js';
import { GatewayService } from './gateway.service.js';
import type { GatewayServices } from './index.js';
import { VirtualKeyResolver } from './virtual-key.js';

/**
 * The AI gateway: /v1/models, /v1/chat/completions, /v1/messages and /v1/embeddings on
 * the API's port; its resolver manages virtual keys (API tokens with gateway rules) and
 * project budgets.
 */
export const gatewayModule = defineModule({
  name: 'gateway',
  entities: [],
  resolvers: [VirtualKeyResolver],
  create: (
    deps: ModuleDeps<{
      authenticator: Authenticator;
      providers: ProviderService;
      metering: MeteringService;
      taskPolicy: TaskPolicy;
    }>,
  ): GatewayServices => ({ gateway: new GatewayService(deps) }),
  routes: (services) => gatewayRoutes(services.gateway),
});
