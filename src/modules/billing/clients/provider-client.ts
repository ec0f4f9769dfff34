import type { LlmClient } from '../llm.js';

/** An LlmClient that can also tell whether its provider answers at all (the health job). */
export interface ProviderClient extends LlmClient {
  /**
   * The cheapest real request the provider offers (listing its models): resolves when it
   * answered successfully within `timeoutMs`, throws an LlmCallError otherwise.
   */
  probe(timeoutMs: number): Promise<void>;
}
