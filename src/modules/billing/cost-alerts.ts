import type { EventBus } from '../../events/bus.js';
import { newId } from '../../shared/ids.js';
import { inTransaction, type Scope } from '../../shared/scope.js';
import type { ProjectPolicy } from '../projects/index.js';
import type { NotificationService } from '../work/index.js';
import { NotificationPriority, NotificationType } from '../work/notification.entity.js';
import { COST_ALERT_TRIGGERED, type CostAlertTriggered } from './billing.events.js';
import type { CostAlertType } from './cost-alert.entity.js';
import { formatMicros, percentOf } from './money.js';
import type { BudgetState, Reservation } from './quota.service.js';

const THRESHOLDS = [80, 90, 100] as const;
const REMEMBERED = 10_000;

/**
 * Cost alerts: a user's or a project's spend reaching 80, 90 or 100% of a daily or monthly
 * cost limit, once per limit and period (a unique row in cost_alerts). The user is told,
 * or the project's owner and maintainers; admins hear every alert. Checked after each
 * settled call from the spend the settlement returned, so no SQL is run until a threshold
 * is crossed, and an instance asks the database about one threshold once per period.
 */
export class CostAlerts {
  /** Alerts this instance knows exist (created by it or by another instance first). */
  private readonly known = new Set<string>();

  constructor(
    private readonly deps: {
      bus: EventBus;
      notifications: NotificationService;
      projects: { policy: Pick<ProjectPolicy, 'managers'> };
    },
  ) {}

  async check(scope: Scope, r: Reservation, budgets: BudgetState[]): Promise<void> {
    const due: { b: BudgetState; threshold: number; key: string; alertType: CostAlertType; start: Date }[] = [];
    for (const b of budgets) {
      if (b.level !== 'user' && b.level !== 'project') continue;
      const percent = percentOf(b.spent, b.limit);
      for (const threshold of THRESHOLDS) {
        if (percent < threshold) break;
        const alertType = `${b.period === 'DAY' ? 'DAILY' : 'MONTHLY'}_${threshold}` as CostAlertType;
        const start = r.periods[b.period];
        const key = `${b.level === 'user' ? r.userId : b.subject}:${alertType}:${start.getTime()}`;
        if (!this.known.has(key)) due.push({ b, threshold, key, alertType, start });
      }
    }
    if (!due.length) return;
    await inTransaction(scope, async (tx) => {
      for (const { b, threshold, alertType, start } of due) {
        const projectId = b.level === 'project' ? b.subject.slice('project:'.length) : null;
        const userId = projectId ? null : r.userId;
        const [created] = await tx.em.execute<{ id: string }[]>(
          `INSERT INTO cost_alerts (id, user_id, project_id, alert_type, threshold_percentage, period_start, spent_usd, limit_usd)
           VALUES (?, ?, ?, ?, ?, ?, ?::numeric, ?::numeric) ON CONFLICT DO NOTHING RETURNING id`,
          [newId(), userId, projectId, alertType, threshold, start, formatMicros(b.spent), formatMicros(b.limit)],
        );
        if (!created) continue;
        const recipients = projectId ? await this.deps.projects.policy.managers(projectId) : [userId!];
        const period = b.period === 'DAY' ? 'daily' : 'monthly';
        await this.deps.notifications.notify(
          tx,
          recipients.map((id) => ({
            userId: id,
            type: NotificationType.ALERT,
            priority: threshold >= 100 ? NotificationPriority.URGENT : NotificationPriority.HIGH,
            title: projectId
              ? `The project's AI spend reached ${threshold}% of its ${period} limit`
              : `AI spend reached ${threshold}% of your ${period} limit`,
            message: `$${formatMicros(b.spent)} of $${formatMicros(b.limit)}`,
            data: { costAlertId: created.id, alertType, ...(projectId ? { projectId } : {}) },
          })),
        );
        await this.deps.bus.publish(tx.em, COST_ALERT_TRIGGERED, {
          alertId: created.id,
          userId,
          projectId,
          recipientIds: recipients,
        } satisfies CostAlertTriggered);
      }
    });
    for (const { key } of due) this.remember(key);
  }

  private remember(key: string) {
    if (this.known.size >= REMEMBERED) this.known.delete(this.known.values().next().value!);
    this.known.add(key);
  }
}
