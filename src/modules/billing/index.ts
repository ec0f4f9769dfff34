import type { Config } from '../../config.js';
import type { EventBus } from '../../events/bus.js';
import type { JobDefinition } from '../../jobs/scheduler.js';
import type { Logger } from '../../shared/logger.js';
import type { AuditService } from '../audit/audit.service.js';
import type { UserService } from '../identity/user.service.js';
import type { NotificationService } from '../work/notification.service.js';
import { BillingResolver } from './billing.resolver.js';
import { CostAlert } from './cost-alert.entity.js';
import { CostRecord } from './cost-record.entity.js';
import { MeteringService, type ProviderResolver } from './metering.service.js';
import { ProviderHealth } from './provider-health.entity.js';
import { Provider } from './provider.entity.js';
import { QuotaReservation } from './quota-reservation.entity.js';
import { QuotaService } from './quota.service.js';
import { UsageCounter } from './usage-counter.entity.js';
import { UsageDaily } from './usage-daily.entity.js';
import { UserProviderKey } from './user-provider-key.entity.js';
import { UserQuota } from './user-quota.entity.js';

export const billingEntities = [Provider, UserProviderKey, ProviderHealth, UserQuota, UsageCounter, QuotaReservation, UsageDaily, CostRecord, CostAlert];
export const billingResolvers = [BillingResolver] as const;

export interface BillingDeps {
  config: Config;
  bus: EventBus;
  audit: AuditService;
  logger: Logger;
  notifications: NotificationService;
  users: UserService;
  providers: ProviderResolver;
}

export function createBilling(d: BillingDeps) {
  const quotas = new QuotaService(d);
  return { quotas, metering: new MeteringService({ ...d, quotas }) };
}

export type BillingServices = ReturnType<typeof createBilling>;

export function billingJobs(s: BillingServices, config: Config): JobDefinition[] {
  return [
    { name: 'billing.releaseExpiredReservations', intervalMs: 60_000, run: ({ em }) => s.quotas.releaseExpired(em) },
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
  ];
}

export { createProviders, providerJobs, providerResolvers, providerSeeds } from './providers.module.js';
