import type { EntityManager } from '@mikro-orm/postgresql';
import pLimit from 'p-limit';
import sql from 'sql-template-tag';

import type { Config } from '../../config.js';
import type { SqlClient } from '../../db/sql.js';
import type { EventBus } from '../../events/bus.js';
import type { Logger } from '../../shared/logger.js';
import type { Mailer } from '../../shared/mailer.js';
import { inTransaction, systemMeta, type Scope } from '../../shared/scope.js';
import type { AuditService } from '../audit/index.js';
import { DeliveryStatus, NotificationChannel } from './notification.entity.js';
import { NOTIFICATION_RECEIVED, type NotificationReceived } from './notification.events.js';
import { signedHeaders, webhookBody } from './webhook.message.js';
import type { WebhookService } from './webhook.service.js';

/** The scheduled job that delivers due notifications; also the audit trail's actor. */
export const DELIVERY_JOB = 'work.deliverNotifications';

/** Notifications claimed per statement. */
export const DELIVERY_BATCH = 50;
/** Sends in flight at once within a batch. */
export const DELIVERY_CONCURRENCY = 8;
/** Longest one send (SMTP or webhook) may take before it counts as a failure. */
export const SEND_TIMEOUT_MS = 15_000;
/**
 * How long a claim holds a notification: its `next_attempt_at` is pushed this far ahead
 * when it is claimed, so an instance that dies between claim and record lets it become
 * due again after the lease. Longer than a whole batch can take
 * (⌈BATCH / CONCURRENCY⌉ × SEND_TIMEOUT_MS = 105 s).
 */
export const CLAIM_LEASE_MS = 2 * 60_000;
/** A run stops claiming new batches after this long (the rest waits for the next tick). */
export const RUN_BUDGET_MS = 60_000;
export const BACKOFF_BASE_MS = 5_000;
export const BACKOFF_CAP_MS = 60 * 60_000;

/** Wait before the attempt after failed attempt number `attempt` (1-based): 5 s × 2^(attempt−1), at most an hour. */
export const backoffMs = (attempt: number) => Math.min(BACKOFF_BASE_MS * 2 ** Math.max(0, attempt - 1), BACKOFF_CAP_MS);

export interface DeliveryReport {
  /** Notifications claimed for an attempt. */
  claimed: number;
  sent: number;
  /** Failed attempts that will be retried. */
  retrying: number;
  /** Notifications that ran out of attempts (FAILED). */
  failed: number;
}

export interface DeliveryDeps {
  config: Config;
  db: SqlClient;
  bus: EventBus;
  audit: AuditService;
  mailer: Mailer;
  logger: Logger;
  webhooks: Pick<WebhookService, 'target'>;
}

/** A claimed notification with what its channel needs. `attempt` is its delivery_attempts after the claim. */
interface Claimed {
  id: string;
  userId: string;
  email: string;
  channel: NotificationChannel;
  type: string;
  title: string;
  message: string | null;
  data: unknown;
  priority: string;
  attempt: number;
  name: string | null;
  createdAt: Date;
  /** The inbox's notification this row delivers on a further channel (null: it is that one). */
  primaryId: string | null;
  webhookId: string | null;
}

/** A delivery failure whose message is safe and useful to store as lastDeliveryError. */
class DeliveryError extends Error {
  static notConfigured(setting: string, what: string) {
    return new DeliveryError(`${setting} is not set: ${what} cannot be delivered`);
  }
  static timeout(what: string) {
    return new DeliveryError(`${what} did not answer within ${SEND_TIMEOUT_MS} ms`);
  }
}

/** The longest lastDeliveryError kept. */
const MAX_ERROR = 1000;
function describe(err: unknown): string {
  const e = err as { message?: string; cause?: { message?: string; code?: string } };
  let text = e?.message ?? String(err);
  if (e?.cause?.message && !text.includes(e.cause.message)) text += `: ${e.cause.message}`;
  return text.length > MAX_ERROR ? `${text.slice(0, MAX_ERROR - 1)}…` : text;
}

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(DeliveryError.timeout(what)), SEND_TIMEOUT_MS);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** POSTs a JSON body; a network error, a timeout or any non-2xx answer throws a DeliveryError naming `what` (e.g. "webhook"). */
async function postJson(url: string, body: string, headers: Record<string, string>, what: string): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
      signal: AbortSignal.timeout(SEND_TIMEOUT_MS),
    });
  } catch (err) {
    if ((err as Error)?.name === 'TimeoutError') throw DeliveryError.timeout(`the ${what}`);
    throw new DeliveryError(`${what} request failed: ${describe(err)}`);
  }
  await res.body?.cancel().catch(() => {});
  if (!res.ok) throw new DeliveryError(`${what} answered ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`);
}

/**
 * Delivery of notifications, at least once, never dropping one.
 *
 * Each pass (1) gives up on notifications whose last allowed attempt never reported
 * back, (2) claims due PENDING ones in batches with `FOR UPDATE SKIP LOCKED` in one
 * auto-committed statement that counts the attempt and pushes `next_attempt_at` one
 * lease ahead, (3) sends with no transaction open, then (4) records the outcome in a
 * short transaction of its own, with its audit record, guarded by the attempt number:
 * an instance whose lease ran out and whose notification was claimed again cannot
 * overwrite the newer attempt's outcome. A crash between claim and record therefore
 * costs one attempt and a lease's delay, never the notification; the row always stays.
 *
 * Channels: WEB publishes `notificationReceived` (with the record's commit), EMAIL goes
 * through the mailer to the user's address (subject = title, text = message), PUSH and
 * SMS are POSTed as JSON to NOTIFICATION_WEBHOOK_URL, WEBHOOK rows to their organisation
 * webhook, signed (any non-2xx answer is a failure).
 * A channel whose setting is missing fails with a lastDeliveryError naming the setting,
 * so the admin sees why (it is retried, and then FAILED, rather than silently "sent").
 * A failed attempt waits backoffMs(attempt); after NOTIFICATION_MAX_ATTEMPTS it is FAILED.
 */
export class NotificationDelivery {
  private readonly maxAttempts: number;
  private readonly log: Logger;

  constructor(private readonly deps: DeliveryDeps) {
    this.maxAttempts = deps.config.NOTIFICATION_MAX_ATTEMPTS;
    this.log = deps.logger.child({ module: 'notifications' });
  }

  /** One pass: gives up on abandoned last attempts, then claims, sends and records batches until none is left or the run's budget is spent. */
  async deliverDue(em: EntityManager): Promise<DeliveryReport> {
    const report: DeliveryReport = { claimed: 0, sent: 0, retrying: 0, failed: 0 };
    report.failed += await this.abandonExhausted(em);
    const limit = pLimit(DELIVERY_CONCURRENCY);
    const deadline = Date.now() + RUN_BUDGET_MS;
    for (;;) {
      const batch = await this.claim();
      report.claimed += batch.length;
      await Promise.all(batch.map((n) => limit(() => this.deliverOne(em, n, report))));
      if (batch.length < DELIVERY_BATCH || Date.now() > deadline) break;
    }
    return report;
  }

  /** (1) PENDING, due, yet out of attempts: the last claim's instance never recorded an outcome. */
  private abandonExhausted(em: EntityManager): Promise<number> {
    return inTransaction(this.scope(em), async (tx) => {
      const rows = await tx.em.execute<{ id: string; attempts: number }[]>(
        `UPDATE notifications SET delivery_status = 'FAILED',
                last_delivery_error = 'no outcome was recorded for attempt ' || delivery_attempts || ' (the delivering instance may have stopped); not retried'
          WHERE delivery_status = 'PENDING' AND next_attempt_at <= now() AND delivery_attempts >= ?
          RETURNING id, delivery_attempts AS attempts`,
        [this.maxAttempts],
      );
      for (const r of rows) {
        this.audit(
          tx,
          'notification.deliveryFailed',
          r.id,
          { attempt: r.attempts, final: true, error: 'no outcome recorded' },
          'FAILURE',
        );
      }
      return rows.length;
    });
  }

  /** (2) One batch, claimed and leased in one statement. */
  private claim(): Promise<Claimed[]> {
    return this.deps.db.query<Claimed>(sql`
      WITH due AS (
        SELECT id FROM notifications
         WHERE delivery_status = 'PENDING' AND next_attempt_at <= now() AND delivery_attempts < ${this.maxAttempts}
         ORDER BY next_attempt_at
         LIMIT ${DELIVERY_BATCH}
         FOR UPDATE SKIP LOCKED)
      UPDATE notifications n
         SET delivery_attempts = n.delivery_attempts + 1,
             next_attempt_at = now() + make_interval(secs => ${CLAIM_LEASE_MS / 1000})
        FROM due, users u
       WHERE n.id = due.id AND u.id = n.user_id
      RETURNING n.id, n.user_id AS "userId", u.email, u.name, n.channel, n.type, n.title, n.message, n.data, n.priority,
                n.delivery_attempts AS attempt, n.created_at AS "createdAt", n.primary_id AS "primaryId", n.webhook_id AS "webhookId"`);
  }

  /** Sends one claimed notification, records the outcome and counts it in `report`. */
  private async deliverOne(em: EntityManager, n: Claimed, report: DeliveryReport): Promise<void> {
    const error = await this.attempt(n);
    let outcome: DeliveryStatus | null;
    try {
      outcome = error === null ? await this.recordSent(em, n) : await this.recordFailure(em, n, error);
    } catch (err) {
      // The claim's lease brings it back; the attempt stays counted.
      this.log.error({ err, notificationId: n.id }, 'could not record a notification delivery outcome');
      return;
    }
    if (outcome === null)
      this.log.warn(
        { notificationId: n.id, attempt: n.attempt },
        'delivery outcome not recorded: the notification was claimed again after the lease ran out',
      );
    else if (outcome === DeliveryStatus.SENT) report.sent++;
    else if (outcome === DeliveryStatus.FAILED) report.failed++;
    else report.retrying++;
  }

  /** (3) The send; null when it worked, else the error to keep. */
  private async attempt(n: Claimed): Promise<string | null> {
    try {
      await this.send(n);
      return null;
    } catch (err) {
      const error = describe(err);
      this.log.warn(
        { notificationId: n.id, channel: n.channel, attempt: n.attempt, error },
        'notification delivery failed',
      );
      return error;
    }
  }

  /** The send itself, by channel; throws on failure. WEB has nothing to send: it is published when recorded. */
  private send(n: Claimed): Promise<void> {
    switch (n.channel) {
      case NotificationChannel.WEB:
        return Promise.resolve();
      case NotificationChannel.EMAIL:
        return this.sendEmail(n);
      case NotificationChannel.PUSH:
      case NotificationChannel.SMS:
        return this.sendToNotificationWebhook(n);
      case NotificationChannel.WEBHOOK:
        return this.sendToOrganisationWebhook(n);
      default:
        throw new DeliveryError(`unknown channel ${String(n.channel)}`);
    }
  }

  private sendEmail(n: Claimed): Promise<void> {
    if (!this.deps.config.SMTP_URL) throw DeliveryError.notConfigured('SMTP_URL', 'EMAIL notifications');
    return withTimeout(
      this.deps.mailer.send({ to: n.email, subject: n.title, text: n.message ?? n.title }),
      'the SMTP server',
    );
  }

  /** PUSH and SMS: a JSON POST to the one configured gateway, which reaches the user's device. */
  private sendToNotificationWebhook(n: Claimed): Promise<void> {
    const url = this.deps.config.NOTIFICATION_WEBHOOK_URL;
    if (!url) throw DeliveryError.notConfigured('NOTIFICATION_WEBHOOK_URL', `${n.channel} notifications`);
    const body = JSON.stringify({
      id: n.id,
      userId: n.userId,
      channel: n.channel,
      title: n.title,
      message: n.message,
      data: n.data,
      priority: n.priority,
    });
    return postJson(url, body, {}, 'webhook');
  }

  /**
   * WEBHOOK: the notification to one organisation webhook, in its format, signed per
   * Standard Webhooks; `webhook-id` is this delivery's id, the same on every retry.
   */
  private async sendToOrganisationWebhook(n: Claimed): Promise<void> {
    const target = n.webhookId ? await this.deps.webhooks.target(n.webhookId) : null;
    if (!target) throw new DeliveryError('the webhook no longer exists');
    if (!target.isActive) throw new DeliveryError(`webhook ${target.name} is disabled`);
    const body = webhookBody(target.format, {
      notificationId: n.primaryId ?? n.id,
      type: n.type,
      priority: n.priority,
      title: n.title,
      message: n.message,
      data: n.data,
      createdAt: new Date(n.createdAt),
      recipient: { id: n.userId, email: n.email, name: n.name },
    });
    return postJson(target.url, body, signedHeaders(target.secret, n.id, body), 'webhook');
  }

  /** (4a) SENT, if this attempt is still the notification's latest (null when it was not). */
  private recordSent(em: EntityManager, n: Claimed): Promise<DeliveryStatus | null> {
    return inTransaction(this.scope(em), async (tx) => {
      const rows = await tx.em.execute<{ id: string }[]>(
        `UPDATE notifications SET delivery_status = 'SENT', sent_at = now() WHERE ${LATEST_ATTEMPT} RETURNING id`,
        [n.id, n.attempt],
      );
      if (!rows.length) return null;
      if (n.channel === NotificationChannel.WEB) {
        await this.deps.bus.publish(tx.em, NOTIFICATION_RECEIVED, {
          id: n.id,
          userId: n.userId,
        } satisfies NotificationReceived);
      }
      this.audit(tx, 'notification.delivered', n.id, { channel: n.channel, attempt: n.attempt });
      return DeliveryStatus.SENT;
    });
  }

  /** (4b) A failed attempt: PENDING again after its backoff, or FAILED after the last one (null when no longer the latest). */
  private recordFailure(em: EntityManager, n: Claimed, error: string): Promise<DeliveryStatus | null> {
    return inTransaction(this.scope(em), async (tx) => {
      const final = n.attempt >= this.maxAttempts;
      const rows = await tx.em.execute<{ next: Date }[]>(
        `UPDATE notifications
            SET last_delivery_error = ?,
                delivery_status = ?,
                next_attempt_at = CASE WHEN ? THEN now() ELSE now() + make_interval(secs => ?) END
          WHERE ${LATEST_ATTEMPT} RETURNING next_attempt_at AS next`,
        [
          error,
          final ? DeliveryStatus.FAILED : DeliveryStatus.PENDING,
          final,
          backoffMs(n.attempt) / 1000,
          n.id,
          n.attempt,
        ],
      );
      if (!rows.length) return null;
      this.audit(
        tx,
        'notification.deliveryFailed',
        n.id,
        { channel: n.channel, attempt: n.attempt, final, error, nextAttemptAt: final ? null : rows[0]!.next },
        'FAILURE',
      );
      return final ? DeliveryStatus.FAILED : DeliveryStatus.PENDING;
    });
  }

  /** The job's own transaction scope (no viewer; the job is the actor). */
  private scope(em: EntityManager): Scope {
    return { em: em.fork(), viewer: null, meta: systemMeta(DELIVERY_JOB) };
  }

  private audit(
    tx: Scope,
    action: string,
    notificationId: string,
    after: Record<string, unknown>,
    outcome?: 'FAILURE',
  ) {
    this.deps.audit.record(tx, {
      ...JOB_ACTOR,
      action,
      entityType: 'Notification',
      entityId: notificationId,
      ...(outcome ? { outcome } : {}),
      after,
    });
  }
}

/** The audit trail's actor for everything the delivery job records. */
const JOB_ACTOR = { actorId: null, actorLabel: `job:${DELIVERY_JOB}` } as const;

/** An outcome is recorded only by the attempt that is still the notification's latest (parameters: id, attempt). */
const LATEST_ATTEMPT = `id = ? AND delivery_status = 'PENDING' AND delivery_attempts = ?`;
