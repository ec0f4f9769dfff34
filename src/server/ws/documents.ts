import {
  GraphQLError,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type GraphQLSchema,
  type ValidationRule,
} from 'graphql';

import type { QueryLimits } from '../limits.js';

/** Documents kept at most; past it the cache starts over (dashboards send the same few). */
const MAX_DOCUMENTS = 1000;

/**
 * Parsed and validated documents by source text, with the parse options and validation
 * rules of HTTP, so that a document answers the same on both transports.
 */
export class DocumentCache {
  private readonly documents = new Map<string, DocumentNode | readonly GraphQLError[]>();
  private readonly rules: ValidationRule[];

  constructor(
    private readonly schema: GraphQLSchema,
    private readonly limits: QueryLimits,
  ) {
    this.rules = [...specifiedRules, ...limits.validationRules];
  }

  /** The document, or the errors that refuse it. */
  prepare(query: string): DocumentNode | readonly GraphQLError[] {
    let cached = this.documents.get(query);
    if (!cached) {
      try {
        const doc = parse(query, this.limits.parseOptions);
        const errors = validate(this.schema, doc, this.rules);
        cached = errors.length ? errors : doc;
      } catch (err) {
        // Tagged as Apollo tags it over HTTP, so that a refused document (e.g. over
        // MAX_QUERY_TOKENS) answers with the same code on both transports.
        const e = err instanceof GraphQLError ? err : new GraphQLError(String(err));
        cached = [
          new GraphQLError(e.message, {
            source: e.source,
            positions: e.positions,
            extensions: { code: 'GRAPHQL_PARSE_FAILED' },
          }),
        ];
      }
      if (this.documents.size > MAX_DOCUMENTS) this.documents.clear();
      this.documents.set(query, cached);
    }
    return cached;
  }
}
