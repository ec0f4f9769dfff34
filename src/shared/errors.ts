/**
 * The error vocabulary of Steward. Services throw these; the GraphQL edge
 * (src/server/errors.ts) maps each once to `extensions.code`. Anything else that
 * escapes a resolver is masked as INTERNAL_SERVER_ERROR and logged with the request id.
 */
export type ErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'BAD_USER_INPUT'
  | 'CONFLICT'
  | 'QUOTA_EXCEEDED'
  | 'RATE_LIMITED'
  /** An AI provider failed or timed out and no fallback answered; nothing was charged. */
  | 'PROVIDER_UNAVAILABLE';

export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Safe to show to the client; never secrets, never internals. */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class UnauthenticatedError extends AppError {
  constructor(message = 'Authentication required') {
    super('UNAUTHENTICATED', message);
  }
  static invalidCredentials() {
    return new UnauthenticatedError('Invalid login or password');
  }
  static invalidToken() {
    return new UnauthenticatedError('Invalid or expired token');
  }
}

export class ForbiddenError extends AppError {
  constructor(message = 'You are not allowed to do this') {
    super('FORBIDDEN', message);
  }
}

export class NotFoundError extends AppError {
  constructor(entity: string, id?: string) {
    super('NOT_FOUND', id ? `${entity} ${id} was not found` : `${entity} was not found`, { entity, id });
  }
}

export class BadInputError extends AppError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('BAD_USER_INPUT', message, details);
  }
  static field(field: string, message: string) {
    return new BadInputError(`${field}: ${message}`, { field });
  }
}

export class ConflictError extends AppError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('CONFLICT', message, details);
  }
}

export class QuotaExceededError extends AppError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('QUOTA_EXCEEDED', message, details);
  }
}

export class RateLimitedError extends AppError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('RATE_LIMITED', message, details);
  }
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isUuid = (v: unknown): v is string => typeof v === 'string' && UUID_RE.test(v);

/** An id argument that must be a UUID; malformed ids are the client's mistake, not a 500. */
export function requireUuid(value: string, field = 'id'): string {
  if (!isUuid(value)) throw BadInputError.field(field, 'must be a UUID');
  return value.toLowerCase();
}
