import type { Config } from '../../config.js';
import type { SqlClient } from '../../db/sql.js';
import type { EventBus } from '../../events/bus.js';
import type { Logger } from '../../shared/logger.js';
import type { Mailer } from '../../shared/mailer.js';
import type { Scope } from '../../shared/scope.js';
import type { AuditService } from '../audit/audit.service.js';
import { DeliveryStatus, Notification, NotificationChannel, NotificationPriority, NotificationType } from './notification.entity.js';
import { NOTIFICATION_RECEIVED, type NotificationReceived } from './notification.events.js';

export interface NotificationDeps {
  config: Config;
  db: SqlClient;
  bus: EventBus;
  audit: AuditService;
  mailer: Mailer;
  logger: Logger;
}

export interface NotifyInput {
  userId: string;
  title: string;
  message?: string | null;
  type: NotificationType;
  priority?: NotificationPriority;
  channel?: NotificationChannel;
  data?: unknown;
  /** Deliver then, not now. */
  scheduledFor?: Date | null;
}

/**
 * Notifications (seed 001): written in the caller's transaction, so a notification
 * exists exactly when the event it tells of committed; delivered after commit.
 */
export class NotificationService {
  constructor(private readonly d: NotificationDeps) {}

  /**
   * Creates notifications inside `tx`. WEB ones that are due now are published on
   * `notificationReceived` with the commit; everything else (other channels, later
   * `scheduledFor`) waits for the delivery job.
   */
  async notify(tx: Scope, inputs: NotifyInput | NotifyInput[]): Promise<Notification[]> {
    const list = Array.isArray(inputs) ? inputs : [inputs];
    const now = new Date();
    const created: Notification[] = [];
    for (const input of list) {
      const channel = input.channel ?? NotificationChannel.WEB;
      const due = !input.scheduledFor || input.scheduledFor <= now;
      const live = channel === NotificationChannel.WEB && due;
      const n = tx.em.create(Notification, {
        user: input.userId,
        title: input.title,
        message: input.message ?? null,
        type: input.type,
        priority: input.priority ?? NotificationPriority.NORMAL,
        channel,
        data: input.data ?? null,
        scheduledFor: input.scheduledFor ?? null,
        nextAttemptAt: input.scheduledFor ?? now,
        deliveryStatus: live ? DeliveryStatus.SENT : DeliveryStatus.PENDING,
        sentAt: live ? now : null,
      });
      created.push(n);
      if (live) await this.d.bus.publish(tx.em, NOTIFICATION_RECEIVED, { id: n.id, userId: input.userId } satisfies NotificationReceived);
    }
    return created;
  }
}
