import type { Route } from '../../server/http.js';
import { gatewayRoutes } from './gateway.routes.js';
import { GatewayService, type GatewayDeps } from './gateway.service.js';
import { VirtualKeyResolver } from './virtual-key.js';

export { GatewayService } from './gateway.service.js';
export { VirtualKeyResolver } from './virtual-key.js';

export const gatewayResolvers = [VirtualKeyResolver] as const;

/**
 * The AI gateway: OpenAI- and Anthropic-compatible HTTP beside /graphql. No entities: the
 * metered pipeline and providers are billing's, API tokens identity's; its resolver
 * manages virtual keys (API tokens with gateway rules) and project budgets.
 */
export function gatewayModuleRoutes(d: GatewayDeps): Route[] {
  return gatewayRoutes(new GatewayService(d));
}
