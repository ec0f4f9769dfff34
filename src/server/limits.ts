import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import {
  GraphQLError,
  Kind,
  NoSchemaIntrospectionCustomRule,
  getNamedType,
  getNullableType,
  isListType,
  type DocumentNode,
  type GraphQLSchema,
  type ParseOptions,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import { fieldExtensionsEstimator, getComplexity, simpleEstimator, type ComplexityEstimator } from 'graphql-query-complexity';
import type { Config } from '../config.js';
import { DEFAULT_PAGE } from '../shared/connection.js';

/**
 * Query limits, identical over HTTP and WebSocket: both paths take their parse options,
 * validation rules and cost check from here.
 */
export interface QueryLimits {
  parseOptions: ParseOptions;
  validationRules: ValidationRule[];
  /**
   * Throws a GraphQLError when the operation costs too much or cannot be costed
   * (QUERY_TOO_COMPLEX), or when its variables do not fit their types (BAD_USER_INPUT).
   */
  assertCost(schema: GraphQLSchema, document: DocumentNode, variables: Record<string, unknown> | undefined, operationName?: string | null): void;
}

/** A plain list (not a connection) is assumed to hold this many items when costing. */
const LIST_ESTIMATE = 10;

/**
 * Cost = 1 per field, times the page size under a connection (`first`/`last`, default 20)
 * and times LIST_ESTIMATE under plain lists. Edges are costed by their connection. A field
 * whose size another argument decides (a report's `first`) says so with its own `complexity`.
 */
const listEstimator: ComplexityEstimator = ({ field, args, childComplexity }) => {
  const named = getNamedType(field.type).name;
  if (named.endsWith('Connection')) return 1 + childComplexity * Number(args.first ?? args.last ?? DEFAULT_PAGE);
  if (named.endsWith('Edge')) return childComplexity;
  if (isListType(getNullableType(field.type))) return 1 + childComplexity * LIST_ESTIMATE;
  return undefined;
};

export function queryLimits(config: Config): QueryLimits {
  // Report as ordinary validation errors (GRAPHQL_VALIDATION_FAILED) instead of throwing out of validate().
  const reject = {
    propagateOnRejection: false,
    exposeLimits: true,
    onReject: [(ctx: ValidationContext | null, err: GraphQLError) => ctx?.reportError(new GraphQLError(err.message.replace(/^Syntax Error: /, '')))],
  };
  const validationRules: ValidationRule[] = [
    maxDepthRule({ n: config.MAX_QUERY_DEPTH, flattenFragments: true, ...reject }),
    maxAliasesRule({ n: config.MAX_QUERY_ALIASES, ...reject }),
    maxDirectivesRule({ n: config.MAX_QUERY_DIRECTIVES, ...reject }),
  ];
  if (config.isProduction) validationRules.push(NoSchemaIntrospectionCustomRule);
  return {
    parseOptions: { maxTokens: config.MAX_QUERY_TOKENS },
    validationRules,
    assertCost(schema, document, variables, operationName) {
      let cost: number;
      try {
        cost = getComplexity({
          schema,
          query: document,
          variables: variables ?? {},
          operationName: operationName ?? undefined,
          estimators: [fieldExtensionsEstimator(), listEstimator, simpleEstimator({ defaultComplexity: 1 })],
        });
      } catch (err) {
        // getComplexity coerces the variables (a page size may come from `first: $n`) and
        // throws their errors, and gives up on documents whose fragments expand past its
        // node budget. Both are the request's fault: without a code they were answered as
        // INTERNAL_SERVER_ERROR (500) over HTTP and differently over WebSocket.
        if (!(err instanceof GraphQLError)) throw err;
        const badVariable = err.nodes?.length === 1 && err.nodes[0]!.kind === Kind.VARIABLE_DEFINITION;
        throw new GraphQLError(err.message, {
          nodes: err.nodes,
          extensions: badVariable
            ? { code: 'BAD_USER_INPUT', http: { status: 400 } }
            : { code: 'QUERY_TOO_COMPLEX', maximumCost: config.MAX_QUERY_COST, http: { status: 400 } },
        });
      }
      if (cost > config.MAX_QUERY_COST) {
        throw new GraphQLError(`Query cost ${cost} exceeds the maximum of ${config.MAX_QUERY_COST}`, {
          extensions: { code: 'QUERY_TOO_COMPLEX', cost, maximumCost: config.MAX_QUERY_COST, http: { status: 400 } },
        });
      }
    },
  };
}
