import { CostAlert } from './cost-alert.entity.js';
import { CostRecord } from './cost-record.entity.js';
import { ProviderHealth } from './provider-health.entity.js';
import { Provider } from './provider.entity.js';
import { QuotaReservation } from './quota-reservation.entity.js';
import { UsageCounter } from './usage-counter.entity.js';
import { UsageDaily } from './usage-daily.entity.js';
import { UserProviderKey } from './user-provider-key.entity.js';
import { UserQuota } from './user-quota.entity.js';

export const billingEntities = [Provider, UserProviderKey, ProviderHealth, UserQuota, UsageCounter, QuotaReservation, UsageDaily, CostRecord, CostAlert];
