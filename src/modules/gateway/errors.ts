import { AppError } from '../../shared/errors.js';

/**
 * The gateway's errors in each wire format's own shape, with the status clients expect
 * (OpenAI's and Anthropic's SDKs map statuses to their error classes and retry 429/5xx).
 * Nothing of a provider's own error text reaches the client (see MeteringService.fail).
 */
export interface WireError {
  status: number;
  /** OpenAI's `type` (invalid_request_error, insufficient_quota, …). */
  type: string;
  /** OpenAI's `code` (invalid_api_key, model_not_found, rate_limit_exceeded, …). */
  code: string | null;
  message: string;
  param?: string | null;
  headers: Record<string, string>;
}

/**
 * Retry-After in seconds: until the instant the refusal says its window starts again
 * (`retryAfter`, worked out where the limit is counted, in the organisation's time zone),
 * or as many seconds as it says.
 */
function retryAfterSeconds(d: Record<string, unknown>, now = Date.now()): number | null {
  const at = typeof d.retryAfter === 'string' ? Date.parse(d.retryAfter) : NaN;
  if (Number.isFinite(at)) return Math.max(1, Math.ceil((at - now) / 1000));
  return typeof d.retryAfterSeconds === 'number' ? Math.max(1, Math.ceil(d.retryAfterSeconds)) : null;
}

export function toWireError(err: unknown): WireError {
  if (!(err instanceof AppError))
    return { status: 500, type: 'api_error', code: null, message: 'Internal server error', headers: {} };
  const d = (err.details ?? {}) as Record<string, unknown>;
  switch (err.code) {
    case 'UNAUTHENTICATED':
      return {
        status: 401,
        type: 'invalid_request_error',
        code: 'invalid_api_key',
        message: err.message,
        headers: { 'www-authenticate': 'Bearer' },
      };
    case 'FORBIDDEN':
      return {
        status: 403,
        type: 'invalid_request_error',
        code: String(d.reason ?? 'permission_denied'),
        message: err.message,
        headers: {},
      };
    case 'NOT_FOUND':
      if (String(d.entity ?? '').startsWith('The model'))
        return {
          status: 404,
          type: 'invalid_request_error',
          code: 'model_not_found',
          message: err.message,
          param: 'model',
          headers: {},
        };
      return { status: 404, type: 'invalid_request_error', code: 'not_found', message: err.message, headers: {} };
    case 'RATE_LIMITED': {
      const seconds = retryAfterSeconds(d);
      return {
        status: 429,
        type: 'requests',
        code: 'rate_limit_exceeded',
        message: err.message,
        headers: seconds ? { 'retry-after': String(seconds) } : {},
      };
    }
    case 'QUOTA_EXCEEDED': {
      const seconds = retryAfterSeconds(d);
      return {
        status: 429,
        type: 'insufficient_quota',
        code: 'insufficient_quota',
        message: err.message,
        headers: seconds ? { 'retry-after': String(seconds) } : {},
      };
    }
    case 'PROVIDER_UNAVAILABLE':
      return { status: 502, type: 'api_error', code: 'provider_error', message: err.message, headers: {} };
    case 'CONFLICT':
      if (d.reason === 'PROVIDER_UNHEALTHY' || d.reason === 'PROVIDER_INACTIVE')
        return {
          status: 503,
          type: 'api_error',
          code: 'provider_unavailable',
          message: err.message,
          headers: { 'retry-after': '5' },
        };
      return { status: 409, type: 'invalid_request_error', code: 'conflict', message: err.message, headers: {} };
    default:
      return {
        status: 400,
        type: 'invalid_request_error',
        code: String(d.reason ?? 'invalid_request'),
        message: err.message,
        param: typeof d.field === 'string' ? d.field : null,
        headers: {},
      };
  }
}

export const openAiErrorBody = (e: WireError) => ({
  error: { message: e.message, type: e.type, param: e.param ?? null, code: e.code },
});

/** Anthropic's error types by status. */
export function anthropicErrorBody(e: WireError) {
  const type =
    {
      400: 'invalid_request_error',
      401: 'authentication_error',
      403: 'permission_error',
      404: 'not_found_error',
      409: 'invalid_request_error',
      413: 'request_too_large',
      429: 'rate_limit_error',
      502: 'api_error',
      503: 'overloaded_error',
    }[e.status] ?? 'api_error';
  return { type: 'error', error: { type, message: e.message } };
}
