import type { AuditService } from '../audit/index.js';
import { defineModule, type ModuleDeps } from '../define-module.js';
import type { UserService } from '../identity/index.js';
import type { ProjectService } from '../projects/index.js';
import type { NotificationService } from '../work/index.js';
import { BillingResolver } from './billing.resolver.js';
import { BillingService } from './billing.service.js';
import { billingEntities, type BillingServices } from './index.js';
import { MeteringService } from './metering.service.js';
import { providerHealthJob } from './provider-health.js';
import { ProviderHealthResolver, ProviderResolver, UserProviderKeyResolver } from './provider.resolver.js';
import { seedLocalProvider } from './provider.seed.js';
import { ProviderService } from './provider.service.js';
import { QuotaService } from './quota.service.js';

/** Providers and their health, quotas, the metered pipeline, usage and cost alerts. */
export const billingModule = defineModule({
  name: 'billing',
  entities: billingEntities,
  resolvers: [ProviderResolver, ProviderHealthResolver, UserProviderKeyResolver, BillingResolver],
  create(
    deps: ModuleDeps<{
      audit: AuditService;
      notifications: NotificationService;
      users: UserService;
      projects: ProjectService;
    }>,
  ): BillingServices {
    const providers = new ProviderService(deps);
    const quotas = new QuotaService(deps);
    const metering = new MeteringService({ ...deps, providers, quotas });
    return { providers, quotas, metering, billing: new BillingService(deps) };
  },
  jobs: (services, { config }) => [
    // The health check, every PROVIDER_HEALTH_INTERVAL_MS, once across instances.
    providerHealthJob(services.providers, config),
    {
      name: 'billing.releaseExpiredReservations',
      intervalMs: 60_000,
      run: ({ em }) => services.quotas.releaseExpired(em),
    },
    {
      // Partitions for this month and the next two exist before any row needs them; those past retention go.
      name: 'ai.promptLogPartitions',
      intervalMs: 6 * 3600_000,
      async run({ em }) {
        // Through functions that run as the schema's owner: the application's role owns no table.
        await em.execute(`SELECT steward_prompt_log_partitions(2)`);
        const old = await em.execute<{ name: string }[]>(
          `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
            WHERE p.relname = 'prompt_logs' AND c.relname < 'prompt_logs_' || to_char((now() AT TIME ZONE 'UTC') - make_interval(months => ?), 'YYYY_MM')`,
          [config.PROMPT_LOG_RETENTION_MONTHS],
        );
        for (const { name } of old) await em.execute(`SELECT steward_drop_prompt_log_partition(?)`, [name]);
        return { dropped: old.map((o) => o.name) };
      },
    },
  ],
  seeds: [seedLocalProvider],
});
