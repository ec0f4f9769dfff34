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
  });
  return built;
}
