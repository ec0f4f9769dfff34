import type { AppError, ErrorCode } from '../shared/errors.js';

/** Thrown by `unreachable`: a switch over a closed set met a value outside it. */
export class UnreachableCaseError extends Error {
  constructor(value: never) {
    super(`Unreachable case: ${String(value)}`);
  }
}

/**
 * The HTTP status that answers an error code on Steward's plain HTTP routes (uploads,
 * downloads, the health probes' neighbours). Exhaustive: a new ErrorCode does not compile
 * until it has a status here. GraphQL over HTTP keeps answering 200 with `extensions.code`.
 */
export function httpStatusOf(code: ErrorCode): number {
  switch (code) {
    case 'BAD_USER_INPUT':
      return 400;
    case 'UNAUTHENTICATED':
      return 401;
    case 'FORBIDDEN':
      return 403;
    case 'NOT_FOUND':
      return 404;
    case 'CONFLICT':
      return 409;
    case 'QUOTA_EXCEEDED':
    case 'RATE_LIMITED':
      return 429;
    case 'PROVIDER_UNAVAILABLE':
      return 502;
    default:
      throw new UnreachableCaseError(code);
  }
}

/** An error's status: its own when it names one HTTP has a word for (an upload's 413 or 415), else its code's. */
export function httpStatusOfError(err: AppError & { readonly httpStatus?: number }): number {
  return err.httpStatus ?? httpStatusOf(err.code);
}
