import { buildSchema, getOperationAST, parse, type GraphQLSchema } from 'graphql';
import { describe, expect, it } from 'vitest';

import { jitGateway } from '../../src/server/executor.js';

/** A toy schema: the executor's rules do not depend on Steward's. */
function toySchema(calls: string[]): GraphQLSchema {
  const schema = buildSchema(`
    type Query { hello(name: String!): String! later: Int! broken: String nested: Nested }
    type Nested { fails: String! }
    type Mutation { first: Boolean! second: Boolean! }
  `);
  const fields = (type: string) =>
    schema.getType(type) as unknown as { getFields(): Record<string, { resolve?: (...a: unknown[]) => unknown }> };
  const q = fields('Query').getFields();
  q.hello!.resolve = (_r, args) => `hello ${(args as { name: string }).name}`;
  q.later!.resolve = async () => 42;
  q.broken!.resolve = () => {
    throw Object.assign(new Error('no'), { extensions: { code: 'FORBIDDEN' } });
  };
  q.nested!.resolve = () => ({});
  fields('Nested').getFields().fails!.resolve = () => {
    throw new Error('plain');
  };
  const m = fields('Mutation').getFields();
  m.first!.resolve = () => {
    calls.push('first');
    throw new Error('first failed');
  };
  m.second!.resolve = () => {
    calls.push('second');
    return true;
  };
  return schema;
}

async function start(schema: GraphQLSchema, cacheSize?: number) {
  const gateway = jitGateway(schema, cacheSize);
  const announced: GraphQLSchema[] = [];
  gateway.onSchemaLoadOrUpdate(({ apiSchema }) => announced.push(apiSchema));
  const { executor } = await gateway.load({ apollo: {} });
  const run = (query: string, variables?: Record<string, unknown>, operationName?: string) => {
    const document = parse(query);
    const rc = {
      document,
      operation: getOperationAST(document, operationName),
      queryHash: query,
      request: { query, variables, operationName },
      context: {},
    };
    return executor!(rc as unknown as Parameters<NonNullable<typeof executor>>[0]);
  };
  return { gateway, announced, run };
}

describe('the graphql-jit gateway', () => {
  it('announces the schema to Apollo when loaded and answers queries as graphql-js does', async () => {
    const schema = toySchema([]);
    const { announced, run } = await start(schema);
    expect(announced).toEqual([schema]);
    expect(await run('query ($n: String!) { hello(name: $n) later }', { n: 'you' })).toEqual({
      data: { hello: 'hello you', later: 42 },
    });
    // Twice: from the cache the second time.
    expect(await run('{ hello(name: "me") }')).toEqual({ data: { hello: 'hello me' } });
    expect(await run('{ hello(name: "me") }')).toEqual({ data: { hello: 'hello me' } });
  });

  it('gives every error extensions, its cause and its location, as graphql-js does', async () => {
    const { run } = await start(toySchema([]));
    const r = await run('{ broken nested { fails } }');
    expect(r.data).toEqual({ broken: null, nested: null });
    const [broken, fails] = [...r.errors!].sort((a, b) => String(a.path).localeCompare(String(b.path)));
    expect(broken!.extensions).toEqual({ code: 'FORBIDDEN' });
    expect(broken!.originalError?.message).toBe('no');
    expect(broken!.locations).toEqual([{ line: 1, column: 3 }]);
    expect(fails!.extensions).toEqual({});
    expect(fails!.path).toEqual(['nested', 'fails']);
  });

  it('leaves bad variables, unknown operations and mutations to graphql-js', async () => {
    const calls: string[] = [];
    const { run } = await start(toySchema(calls));
    const bad = await run('query ($n: String!) { hello(name: $n) }', {});
    expect(bad.data).toBeUndefined();
    expect(bad.errors![0]!.message).toBe('Variable "$n" of required type "String!" was not provided.');
    expect(bad.errors![0]!.nodes).toHaveLength(1); // what Apollo needs to call it BAD_USER_INPUT
    expect((await run('query A { later } query B { later }', undefined, 'C')).errors![0]!.message).toBe(
      'Unknown operation named "C".',
    );
    // graphql-js stops a mutation at the first error that nulls the answer; graphql-jit would run `second` too.
    const m = await run('mutation { first second }');
    expect(m.data).toBeNull();
    expect(calls).toEqual(['first']);
  });

  it('answers the same while compiled operations past the bound are evicted', async () => {
    const { run } = await start(toySchema([]), 2);
    for (const name of ['a', 'b', 'c', 'a'])
      expect(await run(`{ hello(name: "${name}") }`)).toEqual({ data: { hello: `hello ${name}` } });
  });
});
