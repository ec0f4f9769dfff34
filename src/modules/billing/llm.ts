/**
 * What the metered pipeline needs of a model, whatever serves it: the official OpenAI
 * SDK (OPENAI and any OpenAI-compatible endpoint), the official Anthropic SDK
 * (ANTHROPIC), or Steward's built-in deterministic LOCAL model.
 */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  /** The completion's cap; the pipeline reserves quota for exactly this many output tokens. */
  maxTokens: number;
  timeoutMs: number;
  /** Aborts the call (client gone, shutdown): the reservation is then released. */
  signal?: AbortSignal;
}

export interface ChatResult {
  content: string;
  promptTokens: number;
  completionTokens: number;
  /** The model that answered (providers may name a snapshot of the one asked for). */
  model: string;
}

export interface LlmClient {
  /** One completion; `onDelta` receives the text as the provider streams it. Throws on failure or timeout. */
  chat(req: ChatRequest, onDelta?: (text: string) => void): Promise<ChatResult>;
}

/** A provider chosen for a call, with the client holding the right key. */
export interface ResolvedProvider {
  provider: {
    id: string;
    name: string;
    providerType: string;
    modelName: string;
    /** Decimal dollars per 1,000 tokens, as strings ("0.003000"). */
    inputCostPer1k: string;
    outputCostPer1k: string;
    maxTokens: number;
    timeoutSeconds: number;
  };
  client: LlmClient;
  /** USER: the caller's own key; PLATFORM: the provider's. */
  keySource: 'USER' | 'PLATFORM';
}
