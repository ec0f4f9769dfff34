import type { GatewayService } from './gateway.service.js';

/**
 * The gateway module's surface. No entities: the metered pipeline and providers are
 * billing's, API tokens identity's.
 */
export interface GatewayServices {
  /** The AI gateway: OpenAI- and Anthropic-compatible HTTP beside /graphql. */
  gateway: GatewayService;
}
