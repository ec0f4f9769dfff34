import type { Config } from '../../config.js';
import type { JobDefinition } from '../../jobs/scheduler.js';
import type { ProviderService } from './provider.service.js';

export const PROVIDER_HEALTH_JOB = 'billing.providerHealth';

/**
 * Checks the active providers every PROVIDER_HEALTH_INTERVAL_MS, once across instances
 * (the scheduler's lease). The lease outlives the slowest possible run: checks run 8 at
 * a time, each bounded by its provider's timeout (at most 600 s).
 */
export function providerHealthJob(
  providers: ProviderService,
  config: Pick<Config, 'PROVIDER_HEALTH_INTERVAL_MS'>,
): JobDefinition {
  return {
    name: PROVIDER_HEALTH_JOB,
    intervalMs: config.PROVIDER_HEALTH_INTERVAL_MS,
    leaseMs: 30 * 60_000,
    run: ({ em }) => providers.checkHealth(em),
  };
}
