import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { ArgumentValidationError, AuthenticationError, AuthorizationError } from 'type-graphql';

import { AppError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { currentRequest } from './request-store.js';

/** Errors whose text graphql-js or Apollo made from the request itself: safe to show. */
const REQUEST_CODES = new Set([
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_USER_INPUT',
  'BAD_REQUEST',
  'OPERATION_RESOLUTION_FAILURE',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'QUERY_TOO_COMPLEX',
]);

function originalOf(error: unknown): unknown {
  let e = error;
  while (e instanceof GraphQLError && e.originalError) e = e.originalError;
  return e;
}

/**
 * The one translation from what resolvers throw to what clients see, used by both
 * Apollo (HTTP) and graphql-ws. AppErrors carry their code; type-graphql's auth and
 * validation errors become UNAUTHENTICATED / FORBIDDEN / BAD_USER_INPUT; errors about
 * the request itself keep their message; anything else is masked as
 * INTERNAL_SERVER_ERROR and logged in full with the request id. No stack traces, ever.
 */
export function createErrorFormatter(logger: Logger, production: boolean) {
  const hideSuggestions = (m: string) => (production ? m.replace(/ Did you mean .*\?$/, '') : m);

  return function formatError(
    formatted: GraphQLFormattedError,
    error: unknown,
    requestId = currentRequest()?.requestId,
  ): GraphQLFormattedError {
    const base = { message: formatted.message, locations: formatted.locations, path: formatted.path };
    const original = originalOf(error);
    if (original instanceof AppError) {
      return { ...base, message: original.message, extensions: { ...original.details, code: original.code } };
    }
    if (original instanceof ArgumentValidationError) {
      const fields = original.extensions.validationErrors.flatMap(function walk(v): {
        field: string;
        problems: string[];
      }[] {
        const own = v.constraints ? [{ field: v.property, problems: Object.values(v.constraints) }] : [];
        return [...own, ...(v.children ?? []).flatMap(walk)];
      });
      return {
        ...base,
        message: `Invalid input: ${fields.flatMap((f) => f.problems).join('; ')}`,
        extensions: { code: 'BAD_USER_INPUT', fields },
      };
    }
    if (original instanceof AuthenticationError) return { ...base, extensions: { code: 'UNAUTHENTICATED' } };
    if (original instanceof AuthorizationError)
      return { ...base, message: 'You are not allowed to do this', extensions: { code: 'FORBIDDEN' } };
    const code = formatted.extensions?.code as string | undefined;
    // A GraphQLError with no cause was made by graphql-js from the request (or its shape).
    const fromRequest = (code && REQUEST_CODES.has(code)) || original instanceof GraphQLError;
    if (fromRequest) {
      const {
        stacktrace: _s,
        exception: _e,
        http: _h,
        ...ext
      } = (formatted.extensions ?? {}) as Record<string, unknown>;
      return {
        ...base,
        message: hideSuggestions(formatted.message),
        extensions: { ...ext, code: code ?? 'GRAPHQL_VALIDATION_FAILED' },
      };
    }
    logger.error({ err: original, requestId, path: formatted.path }, 'unexpected error in an operation');
    return {
      ...base,
      message: 'Internal server error',
      extensions: { code: 'INTERNAL_SERVER_ERROR', ...(requestId ? { requestId } : {}) },
    };
  };
}

export type ErrorFormatter = ReturnType<typeof createErrorFormatter>;
