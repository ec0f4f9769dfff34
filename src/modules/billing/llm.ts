/**
 * What the metered pipeline needs of a model, whatever serves it: the official OpenAI
 * SDK (OPENAI and any OpenAI-compatible endpoint), the official Anthropic SDK
 * (ANTHROPIC), or Steward's built-in deterministic LOCAL model.
 */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** A tool call the model asked for (OpenAI's shape: `arguments` is JSON text). */
export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** One piece of a streamed answer, as the gateway relays it. */
export interface ChatDelta {
  text?: string;
  /** OpenAI's streamed tool-call fragments (index, and id/name on the first fragment). */
  toolCalls?: { index: number; id?: string; type?: 'function'; function?: { name?: string; arguments?: string } }[];
}

/**
 * What the gateway passes through beside the plain chat: the caller's OpenAI-format
 * messages (tool results, content parts) and options. Absent for Steward's own calls.
 */
export interface ChatPassThrough {
  /** OpenAI Chat Completions messages as the caller sent them (used instead of `messages` by OpenAI clients). */
  messages?: unknown[];
  tools?: unknown[];
  toolChoice?: unknown;
  temperature?: number;
  topP?: number;
  stop?: string | string[];
  user?: string;
}

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  /** The completion's cap; the pipeline reserves quota for exactly this many output tokens. */
  maxTokens: number;
  timeoutMs: number;
  /** Aborts the call (client gone, shutdown): the reservation is then released. */
  signal?: AbortSignal;
  passThrough?: ChatPassThrough;
}

export interface ChatResult {
  content: string;
  promptTokens: number;
  completionTokens: number;
  /** The model that answered (providers may name a snapshot of the one asked for). */
  model: string;
  /** OpenAI's finish reasons: stop, length, tool_calls, content_filter. */
  finishReason?: string;
  toolCalls?: ToolCall[];
  /** True when the provider reported the token counts (false: Steward counted them). */
  usageReported?: boolean;
}

export interface LlmClient {
  /**
   * One completion; `onDelta` receives the text as the provider streams it, `onEvent`
   * every delta (text and tool calls). Throws on failure or timeout.
   */
  chat(req: ChatRequest, onDelta?: (text: string) => void, onEvent?: (delta: ChatDelta) => void): Promise<ChatResult>;
  /** Embeddings (OpenAI-compatible providers only). */
  embed?(req: EmbeddingRequest): Promise<EmbeddingResult>;
}

export interface EmbeddingRequest {
  model: string;
  input: string | string[];
  timeoutMs: number;
  signal?: AbortSignal;
  dimensions?: number;
  encodingFormat?: 'float' | 'base64';
}

export interface EmbeddingResult {
  data: { index: number; embedding: number[] | string }[];
  model: string;
  promptTokens: number;
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
