import type { GatewayService } from './gateway.service.js';
import type { VirtualKeyService } from './virtual-key.service.js';

/**
 * The gateway module's surface. No entities: the metered pipeline and providers are
 * billing's, API tokens identity's.
 */
export interface GatewayServices {
  /** The AI gateway: OpenAI- and Anthropic-compatible HTTP beside /graphql. */
  gateway: GatewayService;
  /** Virtual keys after creation: listed, changed, revoked. */
  virtualKeys: VirtualKeyService;
}

export { VIRTUAL_KEY_CHANGED, type VirtualKeyChanged } from './virtual-key.events.js';
