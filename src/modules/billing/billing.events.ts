/** Spend crossed 80, 90 or 100% of a cost limit (once per alert type and period). */
export const COST_ALERT_TRIGGERED = 'billing.costAlertTriggered';

export interface CostAlertTriggered {
  alertId: string;
  userId: string;
}
