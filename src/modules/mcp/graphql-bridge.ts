import { execute, type DocumentNode, type GraphQLSchema } from 'graphql';

import { createContext, type Runtime } from '../../server/context.js';
import { createErrorFormatter, type ErrorFormatter } from '../../server/errors.js';
import type { RequestMeta, Viewer } from '../../shared/scope.js';

/** An operation refused or failed, with the code and message a GraphQL client would have seen. */
export class ToolError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/**
 * Runs one of Steward's own GraphQL operations in-process, as the MCP caller. Steward's
 * MCP tools go through here rather than around it so that they are the GraphQL operation
 * itself: the same `@Allow` rule (src/server/auth-checker.ts, token scopes included),
 * the same input validation, the same service call with its audit record and live events,
 * and the same error codes (src/server/errors.ts).
 */
export class GraphQLBridge {
  private readonly formatError: ErrorFormatter;

  constructor(
    private readonly schema: GraphQLSchema,
    private readonly runtime: Runtime,
  ) {
    this.formatError = createErrorFormatter(runtime.logger, runtime.config.isProduction);
  }

  async run<T>(
    document: DocumentNode,
    variables: Record<string, unknown>,
    viewer: Viewer,
    meta: RequestMeta,
  ): Promise<T> {
    const result = await execute({
      schema: this.schema,
      document,
      variableValues: variables,
      contextValue: createContext(this.runtime, viewer, meta),
    });
    const error = result.errors?.[0];
    if (error) {
      const formatted = this.formatError(error.toJSON(), error, meta.requestId);
      const { code, ...details } = (formatted.extensions ?? {}) as Record<string, unknown>;
      throw new ToolError(String(code ?? 'INTERNAL_SERVER_ERROR'), formatted.message, details);
    }
    return result.data as T;
  }
}
