/** Spend crossed 80, 90 or 100% of a cost limit (once per alert type and period). */
export const COST_ALERT_TRIGGERED = 'billing.costAlertTriggered';

export interface CostAlertTriggered {
  alertId: string;
  /** The user whose limit it is; null for a project's. */
  userId: string | null;
  projectId?: string | null;
  /** Who was told: the user, or the project's owner and maintainers. */
  recipientIds?: string[];
}
