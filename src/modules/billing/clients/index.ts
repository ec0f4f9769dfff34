import { BadInputError } from '../../../shared/errors.js';
import { ProviderType } from '../provider.entity.js';
import { anthropicClient } from './anthropic.js';
import { localClient } from './local.js';
import { openAiClient } from './openai.js';
import type { ProviderClient } from './provider-client.js';

export { LlmCallError, type LlmFailure } from './errors.js';
export type { ProviderClient } from './provider-client.js';
export { countPromptTokens, countTokens, LOCAL_MODEL, localReply } from './local.js';

export interface ClientTarget {
  name: string;
  providerType: ProviderType | `${ProviderType}`;
  apiEndpoint?: string | null;
}

/** Provider types Steward has a client for; the others are refused at call time. */
export const SUPPORTED_TYPES: ReadonlySet<string> = new Set([
  ProviderType.OPENAI,
  ProviderType.ANTHROPIC,
  ProviderType.LOCAL,
]);

/** What GOOGLE and HUGGINGFACE get until they have a client: a clear refusal, never a made-up answer. */
function unsupported(type: string): ProviderClient {
  const refuse = async (): Promise<never> => {
    throw new BadInputError(
      `provider type ${type} has no client yet: use an OPENAI (or OpenAI-compatible), ANTHROPIC or LOCAL provider`,
      { providerType: type },
    );
  };
  return { chat: refuse, probe: refuse };
}

/**
 * The client for a provider, holding `apiKey` (the caller's own or the platform's; null
 * for LOCAL and keyless self-hosted endpoints) in its closure only.
 */
export function createLlmClient(target: ClientTarget, apiKey: string | null): ProviderClient {
  switch (target.providerType) {
    case ProviderType.OPENAI:
      return openAiClient({ name: target.name, apiKey, baseURL: target.apiEndpoint });
    case ProviderType.ANTHROPIC:
      // Without a key the SDK refuses to send anything; a placeholder lets a probe reach the API (and get its 401).
      return anthropicClient({ name: target.name, apiKey: apiKey ?? 'none', baseURL: target.apiEndpoint });
    case ProviderType.LOCAL:
      return localClient();
    default:
      return unsupported(target.providerType);
  }
}
