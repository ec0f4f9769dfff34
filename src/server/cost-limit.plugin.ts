import type { ApolloServerPlugin } from '@apollo/server';
import type { GraphQLSchema } from 'graphql';

import type { QueryLimits } from './limits.js';

export interface CostLimitPluginOptions {
  /** The executable schema the operations are costed against (the same one Apollo executes). */
  schema: GraphQLSchema;
  /** The cost rule shared with the WebSocket path (src/server/limits.ts: QUERY_TOO_COMPLEX, BAD_USER_INPUT). */
  limits: Pick<QueryLimits, 'assertCost'>;
}

/**
 * Refuses an HTTP operation that costs more than MAX_QUERY_COST before anything runs: it
 * checks once the operation is resolved (parsed, validated, named), with its variables,
 * so a page size given as a variable counts like a literal one.
 */
export function costLimitPlugin({ schema, limits }: CostLimitPluginOptions): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, request, operationName }) {
          limits.assertCost(schema, document, request.variables, operationName);
        },
      };
    },
  };
}
