import { randomBytes } from 'node:crypto';
import { buildSchema, parse, specifiedRules, validate, type GraphQLError } from 'graphql';
import { describe, expect, it } from 'vitest';

import { loadConfig } from '../../src/config.js';
import { queryLimits } from '../../src/server/limits.js';

/** The cost estimate on a schema of its own, so the numbers are easy to check by hand. */
const schema = buildSchema(`
  type Query { things(first: Int, last: Int): ThingConnection! }
  type ThingConnection { edges: [ThingEdge!]! totalCount: Int! }
  type ThingEdge { cursor: String! node: Thing! }
  type Thing { id: ID! related: [Thing!]! children(first: Int): ThingConnection! }
`);

const limits = (MAX_QUERY_COST: number) =>
  queryLimits(
    loadConfig({
      MAX_QUERY_COST: String(MAX_QUERY_COST),
      TOKEN_SIGNING_KEY: 'x'.repeat(32),
      ENCRYPTION_MASTER_KEY: randomBytes(32).toString('base64'),
    }),
  );

/** The cost of an operation costing more than 10, read from the refusal at a limit of 10. */
function costOf(query: string, variables?: Record<string, unknown>): number {
  try {
    limits(10).assertCost(schema, parse(query), variables, undefined);
    return 0;
  } catch (err) {
    return (err as GraphQLError).extensions.cost as number;
  }
}

describe('query cost', () => {
  it('multiplies what is under a connection by the page size it asks for', () => {
    expect(costOf('{ things(first: 100) { edges { node { id } } } }')).toBe(1 + 100 * 2);
    expect(costOf('{ things(last: 50) { edges { cursor node { id } } } }')).toBe(1 + 50 * 3);
  });

  it('multiplies nested connections, so first: 100 inside first: 100 costs ten thousand times its leaves', () => {
    const nested = '{ things(first: 100) { edges { node { id children(first: 100) { edges { node { id } } } } } } }';
    expect(costOf(nested)).toBe(1 + 100 * (1 + 1 + (1 + 100 * 2)));
  });

  it('assumes the default page of 20 when no size is given, and reads the size from variables', () => {
    expect(costOf('{ things { totalCount } }')).toBe(1 + 20);
    expect(costOf('query ($n: Int) { things(first: $n) { totalCount } }', { n: 40 })).toBe(1 + 40);
  });

  it('counts what is under a plain list as many times as such a list may hold (100), and a nested connection without a size as 20', () => {
    expect(costOf('{ things(first: 1) { edges { node { related { id } } } } }')).toBe(1 + 1 * (1 + (1 + 100 * 1)));
    expect(costOf('{ things(first: 1) { edges { node { children { totalCount } } } } }')).toBe(
      1 + 1 * (1 + (1 + 20 * 1)),
    );
  });

  it('lets an operation at the limit through and refuses one over it', () => {
    const tooComplex = expect.objectContaining({
      extensions: expect.objectContaining({ code: 'QUERY_TOO_COMPLEX', cost: 11, maximumCost: 10 }),
    });
    expect(() =>
      limits(10).assertCost(schema, parse('{ things(first: 9) { totalCount } }'), undefined, undefined),
    ).not.toThrow();
    expect(() =>
      limits(10).assertCost(schema, parse('{ things(first: 10) { totalCount } }'), undefined, undefined),
    ).toThrow(tooComplex);
  });

  it('answers variables of the wrong type as BAD_USER_INPUT rather than failing to cost them', () => {
    expect(() =>
      limits(1000).assertCost(
        schema,
        parse('query ($n: Int) { things(first: $n) { totalCount } }'),
        { n: 'many' },
        undefined,
      ),
    ).toThrow(expect.objectContaining({ extensions: expect.objectContaining({ code: 'BAD_USER_INPUT' }) }));
  });
});

describe('page sizes the estimator refuses', () => {
  const badInput = expect.objectContaining({ extensions: expect.objectContaining({ code: 'BAD_USER_INPUT' }) });

  it('refuses a negative first or last, literal or from a variable, before anything runs', () => {
    for (const q of ['{ things(first: -1) { totalCount } }', '{ things(last: -100) { totalCount } }']) {
      expect(() => limits(1000).assertCost(schema, parse(q), undefined, undefined)).toThrow(badInput);
    }
    expect(() =>
      limits(1000).assertCost(
        schema,
        parse('query ($n: Int) { things(first: $n) { totalCount } }'),
        { n: -5 },
        undefined,
      ),
    ).toThrow(badInput);
    expect(() =>
      limits(1000).assertCost(schema, parse('{ things(first: 0) { totalCount } }'), undefined, undefined),
    ).not.toThrow();
  });

  it('does not let a negative alias cancel the cost of its siblings', () => {
    // Taken at face value, -100 would bring this operation from ~20,000 down to ~2.
    const q =
      '{ a: things(first: 100) { edges { node { id children(first: 100) { edges { node { id } } } } } } b: things(first: -100) { edges { node { id children(first: 100) { edges { node { id } } } } } } }';
    expect(() => limits(50).assertCost(schema, parse(q), undefined, undefined)).toThrow(badInput);
    // ...also when nested under a connection whose own size is fine.
    expect(() =>
      limits(50_000).assertCost(
        schema,
        parse('{ things(first: 1) { edges { node { children(first: -3) { totalCount } } } } }'),
        undefined,
        undefined,
      ),
    ).toThrow(badInput);
  });
});

describe('limit errors', () => {
  const rules = (MAX_QUERY_DIRECTIVES: string) =>
    queryLimits(
      loadConfig({
        MAX_QUERY_DIRECTIVES,
        TOKEN_SIGNING_KEY: 'x'.repeat(32),
        ENCRYPTION_MASTER_KEY: randomBytes(32).toString('base64'),
      }),
    ).validationRules;

  it('answers a document over a limit with that one error, not one per offending node', () => {
    const repeated = `{ things(first: 1) { totalCount ${' @include(if: true)'.repeat(200)} } }`;
    const errors = validate(schema, parse(repeated), [...specifiedRules, ...rules('10')]);
    expect(errors.map((e) => e.message)).toEqual(['Directives limit of 10 exceeded, found 200.']);
  });

  it('still reports every other validation error of a document within the limits', () => {
    const errors = validate(
      schema,
      parse('{ things(first: 1) { nope totalCount @include(if: true) @include(if: true) } }'),
      [...specifiedRules, ...rules('10')],
    );
    expect(errors.length).toBe(2);
  });
});
