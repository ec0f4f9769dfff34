import { GraphQLError, Kind, visit, type ASTNode, type DocumentNode } from 'graphql';

import { findUnstorable, unstorableCharacter } from '../shared/storable-text.js';

/** Documents already searched (Apollo and the WebSocket path both reuse parsed documents). */
const clean = new WeakSet<DocumentNode>();

const refusal = (where: string, reason: string, nodes?: readonly ASTNode[]) =>
  new GraphQLError(`${where} contains ${reason}, which cannot be stored`, {
    nodes,
    extensions: { code: 'BAD_USER_INPUT', http: { status: 400 } },
  });

/**
 * Every text an operation brings — string literals in the document (arguments, default
 * values, JSON literals) and its variables at any depth, JSON scalars included — must be
 * storable in PostgreSQL (src/shared/storable-text.ts), else the operation is refused as
 * BAD_USER_INPUT before it runs: the one place such input is stopped, for both
 * transports (called with the cost check, src/server/limits.ts). Without it a NUL
 * reached the database deep inside a service and failed as INTERNAL_SERVER_ERROR, or
 * after an AI provider had already answered.
 */
export function assertStorableInput(document: DocumentNode, variables: Record<string, unknown> | undefined): void {
  if (!clean.has(document)) {
    let bad: GraphQLError | undefined;
    visit(document, {
      [Kind.STRING]: (node) => {
        const reason = unstorableCharacter(node.value);
        if (reason && !bad) bad = refusal('A string in the document', reason, [node]);
      },
    });
    if (bad) throw bad;
    clean.add(document);
  }
  if (!variables) return;
  for (const [name, value] of Object.entries(variables)) {
    const found = findUnstorable(value, `$${name}`);
    if (found) throw refusal(`Variable "${found.path}"`, found.reason);
  }
}
