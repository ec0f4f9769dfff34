import type { EntityManager } from '@mikro-orm/postgresql';

import { newId } from '../../shared/ids.js';
import { LOCAL_MODEL } from './clients/local.js';

/** The seeded provider: Steward's built-in deterministic model, free, so `npm start` can chat at once. */
export const LOCAL_PROVIDER = {
  name: 'Steward Local',
  modelName: LOCAL_MODEL,
  maxTokens: 1024,
  timeoutSeconds: 30,
} as const;

/**
 * Adds "Steward Local" when there is no LOCAL provider at all. Idempotent, and an admin's
 * later choices stand: renamed, repriced or deactivated, it is not added again.
 */
export async function seedLocalProvider(em: EntityManager): Promise<void> {
  const id = newId();
  const inserted = await em.execute<{ id: string }[]>(
    `INSERT INTO providers (id, name, provider_type, model_name, active, platform_provided, input_cost_per1k, output_cost_per1k, max_tokens, timeout_seconds)
     SELECT ?, ?, 'LOCAL', ?, true, true, 0, 0, ?, ?
      WHERE NOT EXISTS (SELECT 1 FROM providers WHERE provider_type = 'LOCAL')
     ON CONFLICT (name) DO NOTHING
     RETURNING id`,
    [id, LOCAL_PROVIDER.name, LOCAL_PROVIDER.modelName, LOCAL_PROVIDER.maxTokens, LOCAL_PROVIDER.timeoutSeconds],
  );
  if (inserted.length)
    await em.execute(`INSERT INTO provider_health (provider_id) VALUES (?) ON CONFLICT (provider_id) DO NOTHING`, [id]);
}
