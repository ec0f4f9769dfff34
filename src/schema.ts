import 'reflect-metadata';

import type { GraphQLSchema } from 'graphql';
import { DateTimeResolver } from 'graphql-scalars';
import { buildSchema, type NonEmptyArray } from 'type-graphql';

import { resolvers } from './modules/index.js';
import { authChecker } from './server/auth-checker.js';

let built: Promise<GraphQLSchema> | undefined;

/** The executable schema, built once per process from the modules' resolvers. */
export function buildStewardSchema(): Promise<GraphQLSchema> {
  built ??= buildSchema({
    resolvers: resolvers as unknown as NonEmptyArray<Function>,
    authChecker,
    // class-validator on every input; unknown properties are not ours to judge (GraphQL already did).
    validate: { forbidUnknownValues: false },
    scalarsMap: [{ type: Date, scalar: DateTimeResolver }],
    // Subscriptions use `subscribe` with src/events (PostgreSQL LISTEN/NOTIFY, per-viewer filters);
    // type-graphql insists on a PubSub all the same, so this one refuses to be used.
    pubSub: {
      publish: () => {
        throw new Error('publish through src/events/bus.ts');
      },
      subscribe: () => {
        throw new Error('subscribe through src/events/subscription.ts');
      },
    },
  });
  return built;
}
