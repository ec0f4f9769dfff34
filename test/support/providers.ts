import { ok } from './client.js';

const CREATE_PROVIDER = `mutation($input: CreateProviderInput!) { createProvider(input: $input) { id } }`;

/** The platform key the fake upstreams are created with (they check it arrives as sent). */
export const FAKE_PLATFORM_KEY = 'sk-platform-key-9876';

/**
 * `createProvider` for a fake upstream: an OPENAI-type provider with the platform key, at
 * most 200 completion tokens and a 5 s timeout unless the input says otherwise.
 */
export function createFakeProvider(
  url: string,
  input: { name: string; modelName: string; apiEndpoint: string } & Record<string, unknown>,
  token: string,
): Promise<{ createProvider: { id: string } }> {
  return ok(
    url,
    CREATE_PROVIDER,
    {
      input: { providerType: 'OPENAI', apiKey: FAKE_PLATFORM_KEY, maxTokens: 200, timeoutSeconds: 5, ...input },
    },
    token,
  ) as Promise<{ createProvider: { id: string } }>;
}
