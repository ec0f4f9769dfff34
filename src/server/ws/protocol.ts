import { randomUUID } from 'node:crypto';
import {
  createSourceEventStream,
  getOperationAST,
  GraphQLError,
  type DocumentNode,
  type GraphQLFormattedError,
  type GraphQLSchema,
} from 'graphql';
import { makeServer, type ServerOptions } from 'graphql-ws';
import type { WebSocket } from 'ws';

import { TopicSource } from '../../events/subscription.js';
import { AppError } from '../../shared/errors.js';
import type { Viewer } from '../../shared/scope.js';
import { createContext, type Context, type Runtime } from '../context.js';
import type { Fanout } from '../fanout.js';
import type { QueryLimits } from '../limits.js';
import type { Metrics } from '../metrics.js';
import type { DocumentCache } from './documents.js';
import type { Revocations } from './revocations.js';
import { UntilEnded, type Extra } from './socket.js';

type Options = ServerOptions<Record<string, unknown> | undefined, Extra>;
type Operations = WeakMap<object, { id: string; socket: WebSocket; arrived: bigint }>;

export interface ProtocolDeps {
  schema: GraphQLSchema;
  runtime: Runtime;
  limits: QueryLimits;
  documents: DocumentCache;
  revocations: Revocations;
  fanout: Fanout;
  /** Errors as sent (formatted, counted in /metrics). */
  format: (errors: readonly GraphQLError[], requestId?: string) => GraphQLFormattedError[];
  metrics: Pick<Metrics, 'onOperation'>;
}

/**
 * graphql-ws's server, Steward's way: a socket authenticates once, in connection_init
 * (`{ authorization: "Bearer …" }`); without valid credentials it is closed (4403).
 * Every operation goes through the same parse options, validation rules and cost check
 * as HTTP; subscriptions are delivered by the fan-out (../fanout.ts).
 */
export function createProtocol(deps: ProtocolDeps) {
  const { schema, runtime, revocations, fanout, format, metrics } = deps;
  const { config, logger } = runtime;
  // Each operation by its context: graphql-ws hands `subscribe` and `onOperation` the
  // execution arguments only; the fan-out needs the socket and the client's operation id,
  // /metrics the time the operation arrived.
  const operations: Operations = new WeakMap();

  return makeServer<Record<string, unknown> | undefined, Extra>({
    schema,
    connectionInitWaitTimeout: config.WS_INIT_TIMEOUT_MS,
    onConnect: authenticateOnConnect(deps),
    onSubscribe: prepareOnSubscribe(deps, operations),
    // Subscriptions: graphql-js resolves the root field (arguments, @Allow rule, the
    // field's TopicSource) and the fan-out delivers; graphql-ws keeps the protocol and the
    // lifecycle through a stream that ends when the client completes or disconnects.
    subscribe: async (args) => {
      const source = await createSourceEventStream(args);
      if (!(source instanceof TopicSource)) {
        if (!(Symbol.asyncIterator in source)) return source; // errors: arguments, rules
        logger.error({ module: 'ws' }, 'a subscription field must return subscription() (src/events/subscription.ts)');
        return { errors: [new GraphQLError('Unexpected error.', { extensions: { code: 'INTERNAL_SERVER_ERROR' } })] };
      }
      const { id, socket } = operations.get(args.contextValue as object)!;
      return new UntilEnded(
        fanout.add({
          id,
          socket,
          source,
          document: args.document,
          operationName: args.operationName,
          variables: args.variableValues,
        }),
      );
    },
    // Refused before it ran (limits, validation): counted as an operation, as Apollo counts such requests.
    onError: (_ctx, _id, payload, errors) => {
      metrics.onOperation(payload.operationName, process.hrtime.bigint());
      return format(errors);
    },
    // Ran (a query or mutation), or subscribed: one operation, with its latency.
    onOperation: (_ctx, _id, _payload, args) => {
      // Named as Apollo names it over HTTP: by the document's operation when the client gave no name.
      const name = getOperationAST(args.document, args.operationName)?.name?.value;
      const op = operations.get(args.contextValue as object);
      operations.delete(args.contextValue as object);
      metrics.onOperation(name, op?.arrived ?? process.hrtime.bigint());
    },
    // The operation's request id, explicitly: over WebSocket no request store is active, and a
    // masked INTERNAL_SERVER_ERROR must be traceable to its log entry as over HTTP.
    onNext: (_ctx, _id, _payload, args, result) =>
      result.errors
        ? { ...result, errors: format(result.errors, (args.contextValue as Context | undefined)?.meta.requestId) }
        : undefined,
    onComplete: (ctx) => {
      ctx.extra.state.subscriptions = Math.max(0, ctx.extra.state.subscriptions - 1);
    },
    onClose: (ctx) => revocations.remove(ctx.extra.state),
  });
}

/** connection_init: the socket's viewer from `{ authorization: "Bearer …" }`, or a refusal (4403). */
function authenticateOnConnect({ runtime, revocations }: ProtocolDeps): NonNullable<Options['onConnect']> {
  const { services, logger } = runtime;
  return async (ctx) => {
    const auth = ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization;
    let viewer: Viewer | null = null;
    try {
      viewer = await services.authenticator.fromAuthorization(typeof auth === 'string' ? auth : null);
    } catch (err) {
      if (!(err instanceof AppError)) logger.error({ err }, 'websocket authentication failed');
    }
    if (!viewer) return false; // graphql-ws closes with 4403 Forbidden
    // The token has done its work; graphql-ws would keep it for the socket's life (memory per socket).
    (ctx as { connectionParams?: unknown }).connectionParams = undefined;
    const state = ctx.extra.state;
    state.viewer = viewer;
    return revocations.add(state);
  };
}

/**
 * subscribe: the per-connection cap, the cached parse and validation, the cost check and
 * the operation's own context (the socket's request id, or a fresh one when the client
 * gave none), remembered for the fan-out and /metrics.
 */
function prepareOnSubscribe(
  { schema, runtime, limits, documents }: ProtocolDeps,
  operations: Operations,
): NonNullable<Options['onSubscribe']> {
  const { config } = runtime;
  return (ctx, id, payload) => {
    const started = process.hrtime.bigint();
    const state = ctx.extra.state;
    if (state.subscriptions >= config.WS_MAX_SUBSCRIPTIONS) {
      return [
        new GraphQLError(`At most ${config.WS_MAX_SUBSCRIPTIONS} operations per connection`, {
          extensions: { code: 'RATE_LIMITED' },
        }),
      ];
    }
    const prepared = documents.prepare(payload.query);
    if (!('kind' in prepared)) return prepared as readonly GraphQLError[];
    const document = prepared as DocumentNode;
    try {
      limits.assertCost(schema, document, payload.variables ?? undefined, payload.operationName);
    } catch (err) {
      return [err as GraphQLError];
    }
    if (!getOperationAST(document, payload.operationName)) {
      return [
        new GraphQLError('Unable to identify the operation', {
          extensions: { code: 'OPERATION_RESOLUTION_FAILURE' },
        }),
      ];
    }
    state.subscriptions++;
    const contextValue = createContext(
      runtime,
      state.viewer!,
      state.requestIdGiven ? state.meta : { ...state.meta, requestId: randomUUID() },
    );
    operations.set(contextValue, { id, socket: state.socket, arrived: started });
    return {
      schema,
      document,
      variableValues: payload.variables,
      operationName: payload.operationName,
      contextValue,
    };
  };
}
