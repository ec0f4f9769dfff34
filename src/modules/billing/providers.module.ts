import type { Config } from '../../config.js';
import type { SqlClient } from '../../db/sql.js';
import type { EventBus } from '../../events/bus.js';
import type { JobDefinition } from '../../jobs/scheduler.js';
import type { Envelope } from '../../shared/crypto.js';
import type { Logger } from '../../shared/logger.js';
import type { AuditService } from '../audit/audit.service.js';
import { providerHealthJob } from './provider-health.js';
import { ProviderHealthResolver, ProviderResolver, UserProviderKeyResolver } from './provider.resolver.js';
import { seedLocalProvider } from './provider.seed.js';
import { ProviderService } from './provider.service.js';

/** Providers, their keys and health: the part of `billing` the metered pipeline calls through. */
export const providerResolvers = [ProviderResolver, ProviderHealthResolver, UserProviderKeyResolver] as const;

/** Reference data: the built-in LOCAL provider. */
export const providerSeeds = [seedLocalProvider];

export interface ProvidersDeps {
  config: Config;
  db: SqlClient;
  bus: EventBus;
  envelope: Envelope;
  logger: Logger;
  audit: AuditService;
}

export function createProviders(d: ProvidersDeps): ProviderService {
  return new ProviderService(d);
}

/** The health check, every PROVIDER_HEALTH_INTERVAL_MS, once across instances. */
export function providerJobs(s: { providers: ProviderService }, d: { config: Pick<Config, 'PROVIDER_HEALTH_INTERVAL_MS'> }): JobDefinition[] {
  return [providerHealthJob(s.providers, d.config)];
}

export { ProviderService } from './provider.service.js';
export { PROVIDER_HEALTH_JOB } from './provider-health.js';
export { PROVIDER_HEALTH_CHANGED, type ProviderHealthChanged } from './provider.events.js';
export { countPromptTokens, countTokens, LlmCallError, LOCAL_MODEL, type LlmFailure } from './clients/index.js';
