import type { Route } from '../../server/http.js';
import { gatewayRoutes } from './gateway.routes.js';
import { GatewayService, type GatewayDeps } from './gateway.service.js';

export { GatewayService } from './gateway.service.js';

/**
 * The AI gateway: OpenAI- and Anthropic-compatible HTTP beside /graphql. No entities or
 * resolvers of its own: the metered pipeline and providers are billing's, API tokens identity's.
 */
export function gatewayModuleRoutes(d: GatewayDeps): Route[] {
  return gatewayRoutes(new GatewayService(d));
}
