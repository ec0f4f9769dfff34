import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import {
  BREAK,
  getNamedType,
  getNullableType,
  GraphQLError,
  isListType,
  Kind,
  NoSchemaIntrospectionCustomRule,
  validate,
  type DocumentNode,
  type GraphQLSchema,
  type ParseOptions,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import {
  fieldExtensionsEstimator,
  getComplexity,
  simpleEstimator,
  type ComplexityEstimator,
} from 'graphql-query-complexity';

import type { Config } from '../config.js';
import { DEFAULT_PAGE } from '../shared/connection.js';
import { NESTED_LIST_CAP } from '../shared/loaders.js';
import { assertStorableInput } from './storable-input.js';

/**
 * Query limits, identical over HTTP and WebSocket: both paths take their parse options,
 * validation rules and cost check from here.
 */
export interface QueryLimits {
  parseOptions: ParseOptions;
  validationRules: ValidationRule[];
  /**
   * Throws a GraphQLError when the operation costs too much or cannot be costed
   * (QUERY_TOO_COMPLEX), or when its input is bad (BAD_USER_INPUT): variables that do not
   * fit their types, a negative page size, or text PostgreSQL cannot store (U+0000, a lone
   * surrogate: ./storable-input.ts). Both transports call it before executing anything.
   */
  assertCost(
    schema: GraphQLSchema,
    document: DocumentNode,
    variables: Record<string, unknown> | undefined,
    operationName?: string | null,
  ): void;
}

/** The refusal of a page size the estimator cannot take at face value. */
class BadPageSize extends GraphQLError {}

/** `first`/`last` as the estimator counts it: absent is the default page; negative is refused before anything runs. */
function pageSize(args: Record<string, unknown>): number {
  for (const name of ['first', 'last'] as const) {
    const n = args[name];
    // A negative size would subtract its subtree from the cost of its siblings, which would
    // then run under a budget they exceed (the resolver refuses only the negative field).
    if (typeof n === 'number' && n < 0) {
      throw new BadPageSize(`${name} must not be less than 0`, {
        extensions: { code: 'BAD_USER_INPUT', http: { status: 400 } },
      });
    }
  }
  return Number(args.first ?? args.last ?? DEFAULT_PAGE);
}

/**
 * Cost = 1 per field, times the page size under a connection (`first`/`last`, default 20)
 * and times NESTED_LIST_CAP under plain lists (the most rows such a list returns per
 * parent: see src/shared/loaders.ts). Edges are costed by their connection.
 * A field whose size another argument decides (a report's `first`) says so with its own `complexity`.
 */
const listEstimator: ComplexityEstimator = ({ field, args, childComplexity }) => {
  const named = getNamedType(field.type).name;
  if (named.endsWith('Connection')) return 1 + childComplexity * pageSize(args);
  if (named.endsWith('Edge')) return childComplexity;
  if (isListType(getNullableType(field.type))) return 1 + childComplexity * NESTED_LIST_CAP;
  return undefined;
};

/**
 * The limit rules as one rule that answers with their FIRST error only, and silences
 * every rule after it: 200 repeated directives made 200 "directive used twice" errors (the
 * list capped at 100 by graphql-js), an amplifier of the request. Run at the Document, so
 * before any other rule reaches the operation.
 */
function firstLimitErrorOnly(limitRules: ValidationRule[]): ValidationRule {
  return (context) => ({
    Document(document) {
      const [first] = validate(context.getSchema(), document, limitRules, { maxErrors: 1 });
      if (first) {
        context.reportError(first);
        // The one context every rule of this validation reports to.
        (context as { reportError: (e: GraphQLError) => void }).reportError = () => {};
      }
      return BREAK;
    },
  });
}

export function queryLimits(config: Config): QueryLimits {
  // Report as ordinary validation errors (GRAPHQL_VALIDATION_FAILED) instead of throwing out of validate().
  const reject = {
    propagateOnRejection: false,
    exposeLimits: true,
    onReject: [
      (ctx: ValidationContext | null, err: GraphQLError) =>
        ctx?.reportError(new GraphQLError(err.message.replace(/^Syntax Error: /, ''))),
    ],
  };
  const validationRules: ValidationRule[] = [
    firstLimitErrorOnly([
      maxDepthRule({ n: config.MAX_QUERY_DEPTH, flattenFragments: true, ...reject }),
      maxAliasesRule({ n: config.MAX_QUERY_ALIASES, ...reject }),
      maxDirectivesRule({ n: config.MAX_QUERY_DIRECTIVES, ...reject }),
    ]),
  ];
  if (config.isProduction) validationRules.push(NoSchemaIntrospectionCustomRule);
  return {
    parseOptions: { maxTokens: config.MAX_QUERY_TOKENS },
    validationRules,
    assertCost(schema, document, variables, operationName) {
      assertStorableInput(document, variables);
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
        if (!(err instanceof GraphQLError) || err instanceof BadPageSize) throw err;
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
