import type { ApolloServerOptionsWithGateway } from '@apollo/server';
import { execute, GraphQLError, printSchema, type GraphQLSchema } from 'graphql';
import { compileQuery, isCompiledQuery, type CompiledQuery } from 'graphql-jit';

import type { Context } from './context.js';

type Gateway = ApolloServerOptionsWithGateway<Context>['gateway'];
type SchemaListener = Parameters<Gateway['onSchemaLoadOrUpdate']>[0];
type Executor = NonNullable<Awaited<ReturnType<Gateway['load']>>['executor']>;

/**
 * Distinct (document, operation name) pairs kept compiled; the least recently used goes
 * first. Measured: the dashboard query compiles in ~1 ms to ~30 KiB, the full
 * introspection query in ~20 ms to ~280 KiB.
 */
const DEFAULT_CACHE_SIZE = 500;

/**
 * HTTP queries executed by graphql-jit instead of graphql-js.
 *
 * Why: on list queries such as the dashboard's (thousands of objects per answer)
 * graphql-js's own work per field (argument coercion, paths, a promise per object of a
 * list, result completion, and the garbage of it all) was most of the Node CPU that was
 * not GC. graphql-jit compiles each operation once into a JavaScript function that does
 * the same work with far fewer allocations and promises; resolvers, scalars'
 * `serialize`, enums and errors are the schema's own. Measured on the bench's dashboard
 * query: ~52 → ~33 ms of Node CPU per request, answers byte for byte the same.
 *
 * Why a gateway: Apollo Server 5 has no executor option. Its gateway interface is the
 * one place it accepts another executor: `load()` hands Apollo the schema (through
 * `onSchemaLoadOrUpdate`) and an executor. Apollo still parses, validates (with our
 * validation rules), runs the plugins (limits' cost check, metrics), formats errors and
 * serialises; only `execute` is ours. Schema and usage reporting stay off (app.ts
 * installs their disabled plugins).
 *
 * Falls back to graphql-js `execute`, with the same arguments Apollo would have used:
 * - for mutations: graphql-js stops a mutation's serial fields at the first error that
 *   nulls the answer, graphql-jit runs the rest anyway (ten aliased `login`s would all
 *   be tried); they are one-off and few, so nothing is lost;
 * - for what graphql-jit does not compile (no such operation, several without a name:
 *   graphql-js then words the error as before) and for a subscription sent over HTTP;
 * - when graphql-jit answers with errors and no data, i.e. it refused the variables
 *   before running anything: graphql-js words variable errors as Apollo expects for
 *   BAD_USER_INPUT. (limits.ts's cost check coerces variables first, so this is a
 *   safety net.)
 */
export function jitGateway(schema: GraphQLSchema, cacheSize = DEFAULT_CACHE_SIZE): Gateway {
  const listeners = new Set<SchemaListener>();
  // null: graphql-js runs it. A Map iterates in insertion order: the first key is the least recently used.
  const compiled = new Map<string, CompiledQuery | null>();

  const compiledFor = (key: string, compile: () => CompiledQuery | null): CompiledQuery | null => {
    let found = compiled.get(key);
    if (found === undefined) {
      found = compile();
      if (compiled.size >= cacheSize) compiled.delete(compiled.keys().next().value!);
    } else compiled.delete(key); // set again below: now the most recently used
    compiled.set(key, found);
    return found;
  };

  const executor: Executor = async (rc) => {
    const { document, request, context } = rc;
    const operationName = request.operationName ?? undefined;
    const query =
      rc.operation?.operation === 'query'
        ? compiledFor(`${rc.queryHash}\u0000${operationName ?? ''}`, () => {
            const c = compileQuery(schema, document, operationName, {
              // Errors sent to clients never carry stacks (errors.ts); resolvers' own errors keep theirs for the logs.
              disablingCapturingStackErrors: true,
              // graphql-jit's fix for @skip/@include inside fragment spreads (its default keeps the old behaviour for now).
              useExperimentalPathBasedSkipInclude: true,
            });
            return isCompiledQuery(c) ? c : null;
          })
        : null;
    if (query) {
      const result = await query.query(undefined, context, request.variables);
      if (result.data !== undefined)
        return result.errors ? { data: result.data, errors: result.errors.map(asGraphQLError) } : result;
    }
    return execute({ schema, document, contextValue: context, variableValues: request.variables, operationName });
  };

  return {
    onSchemaLoadOrUpdate(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async load() {
      // The schema never changes while the process lives: announced once, here, as Apollo requires before using it.
      const sdl = printSchema(schema);
      for (const listener of listeners) listener({ apiSchema: schema, coreSupergraphSdl: sdl });
      return { executor };
    },
    async stop() {
      compiled.clear();
      listeners.clear();
    },
  };
}

/**
 * A graphql-jit error as graphql-js would have made it. graphql-jit's errors leave
 * `extensions` undefined when the cause has none, where Apollo reads
 * `extensions.code` of every error (and answered "Internal server error" instead);
 * message, locations, path and the original error (which errors.ts translates) are kept.
 */
function asGraphQLError(e: GraphQLError): GraphQLError {
  const error = new GraphQLError(e.message, {
    path: e.path,
    originalError: e.originalError ?? undefined,
    extensions: e.extensions,
  });
  return Object.assign(error, { locations: e.locations });
}
