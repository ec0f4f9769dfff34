import type { EntityManager } from '@mikro-orm/postgresql';

import { referenceSeeds } from '../modules/index.js';
import { inTransaction } from '../shared/scope.js';

/**
 * Reference data every installation needs (agents, templates, a local provider, …),
 * each module's seed written to be idempotent: run at every start, it adds what is
 * missing and never duplicates or overwrites what an admin changed.
 */
export async function seedReferenceData(em: EntityManager): Promise<void> {
  for (const seed of referenceSeeds) await inTransaction(em, seed);
}
