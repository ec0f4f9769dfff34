import Anthropic from '@anthropic-ai/sdk';

/**
 * Why a model call failed, whatever served it:
 * - TIMEOUT: no complete answer within the request's `timeoutMs`;
 * - ABORTED: the caller's AbortSignal fired (client gone, shutdown);
 * - AUTH: the provider refused the key (401/403);
 * - UPSTREAM: the provider answered with an error (`status` says which);
 * - NETWORK: no answer at all (refused, reset, DNS).
 */
export type LlmFailure = 'TIMEOUT' | 'ABORTED' | 'AUTH' | 'UPSTREAM' | 'NETWORK';

/**
 * A failed model call. Its message is safe to log and to show: the key the call used is
 * scrubbed from it, and the SDK's error (whose request may carry the key) is not kept as
 * its `cause`.
 */
export class LlmCallError extends Error {
  override name = 'LlmCallError';
  constructor(
    readonly kind: LlmFailure,
    message: string,
    /** The provider's HTTP status, when it answered. */
    readonly status?: number,
  ) {
    super(message);
  }

  /** Worth trying another provider: the provider failed, not the request. */
  get retryable(): boolean {
    return (
      this.kind === 'TIMEOUT' ||
      this.kind === 'NETWORK' ||
      (this.kind === 'UPSTREAM' && (this.status === undefined || this.status === 429 || this.status >= 500))
    );
  }
}

/** `text` with every occurrence of `secret` (and of its longer fragments) replaced. */
export function scrub(text: string, secret: string | null | undefined): string {
  if (!secret || secret.length < 4) return text;
  let out = text.split(secret).join('[redacted]');
  // Providers echo keys partially ("sk-proj-****abcd", or a prefix): hide any 8+ character run of the key.
  if (secret.length >= 8 && secret.length <= 512) {
    for (let len = Math.min(secret.length - 1, 24); len >= 8; len--) {
      for (let i = 0; i + len <= secret.length; i++) {
        const piece = secret.slice(i, i + len);
        if (out.includes(piece)) out = out.split(piece).join('[redacted]');
      }
    }
  }
  return out;
}

/**
 * What the OpenAI-compatible HTTP transport throws when the provider answered with an
 * error: its HTTP status and the provider's own message (not yet scrubbed), or no status
 * for a failure inside a 200 stream (an SSE error event, malformed data).
 */
export class ProviderAnswerError extends Error {
  override name = 'ProviderAnswerError';
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/**
 * The errno-style code of a failure to reach the provider at all: a socket error
 * (ECONNREFUSED, ECONNRESET, ENOTFOUND…) or undici's own (UND_ERR_SOCKET: the connection
 * closed mid-answer, UND_ERR_CONNECT_TIMEOUT…); undefined for anything else.
 */
function networkCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || code === 'UND_ERR_ABORTED') return undefined;
  return /^E[A-Z0-9_]+$/.test(code) || code.startsWith('UND_ERR_') ? code : undefined;
}

interface SdkLikeError {
  name?: string;
  status?: number;
  message?: string;
}

/**
 * Maps the HTTP transport's error (openai-http.ts), or @anthropic-ai/sdk's, to an
 * LlmCallError. `timedOut` / `aborted` say which of our own signals fired, if any.
 */
export function toLlmError(
  err: unknown,
  ctx: { provider: string; timeoutMs: number; timedOut: boolean; aborted: boolean; key?: string | null },
): unknown {
  if (err instanceof LlmCallError) return err;
  if (ctx.timedOut) return new LlmCallError('TIMEOUT', `${ctx.provider} did not answer within ${ctx.timeoutMs} ms`);
  if (ctx.aborted) return new LlmCallError('ABORTED', `The call to ${ctx.provider} was aborted`);
  const e = (err ?? {}) as SdkLikeError;
  const message = scrub(String(e.message ?? err), ctx.key).slice(0, 500);
  if (err instanceof ProviderAnswerError) return answerError(err.status, message, ctx.provider);
  const code = networkCode(err);
  if (code) return new LlmCallError('NETWORK', `${ctx.provider} could not be reached (${code}): ${message}`);
  if (err instanceof Anthropic.APIConnectionTimeoutError) {
    return new LlmCallError('TIMEOUT', `${ctx.provider} did not answer within ${ctx.timeoutMs} ms`);
  }
  if (err instanceof Anthropic.APIUserAbortError || e.name === 'AbortError') {
    return new LlmCallError('ABORTED', `The call to ${ctx.provider} was aborted`);
  }
  if (err instanceof Anthropic.APIConnectionError) {
    const cause = (err as { cause?: { cause?: { code?: string }; code?: string } }).cause;
    const code = cause?.cause?.code ?? cause?.code;
    return new LlmCallError('NETWORK', `${ctx.provider} could not be reached${code ? ` (${code})` : ''}: ${message}`);
  }
  if (err instanceof Anthropic.APIError && typeof e.status === 'number') {
    return answerError(e.status, message, ctx.provider);
  }
  // A malformed answer or stream (e.g. an SSE error event): the provider's failure.
  if (err instanceof Anthropic.AnthropicError) return answerError(undefined, message, ctx.provider);
  return err;
}

/** The provider answered with an error: AUTH for a refused key (401/403), UPSTREAM otherwise. */
function answerError(status: number | undefined, message: string, provider: string): LlmCallError {
  if (status === undefined) return new LlmCallError('UPSTREAM', `${provider} failed: ${message}`);
  const kind = status === 401 || status === 403 ? 'AUTH' : 'UPSTREAM';
  return new LlmCallError(kind, `${provider} answered ${status}: ${message}`, status);
}

/** withDeadline's options for one client: its provider and key fixed, each call's time limit and caller's signal. */
export const deadlineFor = (provider: string, key: string | null) => (timeoutMs: number, signal?: AbortSignal) => ({
  provider,
  timeoutMs,
  signal,
  key,
});

/**
 * Runs `fn` with a signal that fires on the caller's abort or after `timeoutMs` (the
 * whole call, streaming included: an SDK's own timeout only covers the wait for the
 * response headers), and maps failures through toLlmError.
 */
export async function withDeadline<T>(
  opts: { provider: string; timeoutMs: number; signal?: AbortSignal; key?: string | null },
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  let timedOut = false;
  const onAbort = () => controller.abort(opts.signal?.reason);
  if (opts.signal?.aborted) throw new LlmCallError('ABORTED', `The call to ${opts.provider} was aborted`);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(
    () => {
      timedOut = true;
      controller.abort(new Error('timeout'));
    },
    Math.max(1, opts.timeoutMs),
  );
  try {
    const result = await fn(controller.signal);
    // An SDK's stream may end quietly when its signal fires: a cut-off reply is no reply.
    if (controller.signal.aborted) throw new Error('aborted');
    return result;
  } catch (err) {
    throw toLlmError(err, {
      provider: opts.provider,
      timeoutMs: opts.timeoutMs,
      timedOut,
      aborted: !timedOut && !!opts.signal?.aborted,
      key: opts.key,
    });
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
