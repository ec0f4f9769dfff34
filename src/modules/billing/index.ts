import type { BillingService } from './billing.service.js';
import { CostAlert } from './cost-alert.entity.js';
import { CostRecord } from './cost-record.entity.js';
import type { MeteringService } from './metering.service.js';
import { ProviderHealth } from './provider-health.entity.js';
import { Provider } from './provider.entity.js';
import type { ProviderService } from './provider.service.js';
import { QuotaReservation } from './quota-reservation.entity.js';
import type { QuotaService } from './quota.service.js';
import { UsageCounter } from './usage-counter.entity.js';
import { UsageDaily } from './usage-daily.entity.js';
import { UserProviderKey } from './user-provider-key.entity.js';
import { UserQuota } from './user-quota.entity.js';

/** The billing module's surface: what other modules and src/db/entities.ts may import. */
export const billingEntities = [
  Provider,
  UserProviderKey,
  ProviderHealth,
  UserQuota,
  UsageCounter,
  QuotaReservation,
  UsageDaily,
  CostRecord,
  CostAlert,
];

export interface BillingServices {
  /** Usage reports, prompt logs, cost alerts and deviation scores (what the billing resolver serves). */
  billing: BillingService;
  /** Providers, their keys and health: what the metered pipeline calls through. */
  providers: ProviderService;
  quotas: QuotaService;
  /** The metered pipeline every AI call goes through. */
  metering: MeteringService;
}

export type { MeteredResult, MeteringService } from './metering.service.js';
export type { BudgetState, BudgetSubject } from './quota.service.js';
export { formatMicros, toMicros } from './money.js';
export { ProviderService } from './provider.service.js';
export { PROVIDER_HEALTH_JOB } from './provider-health.js';
export { PROVIDER_HEALTH_CHANGED, type ProviderHealthChanged } from './provider.events.js';
export { countPromptTokens, countTokens, LlmCallError, LOCAL_MODEL, type LlmFailure } from './clients/index.js';
export type { ChatDelta, ChatMessage, ChatPassThrough, ChatResult, ResolvedProvider, ToolCall } from './llm.js';
