import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import sql, { type Sql } from 'sql-template-tag';

import { NEWEST_FIRST, paginate, type Connection, type PageArgs } from '../../shared/connection.js';
import { NotFoundError, requireUuid } from '../../shared/errors.js';
import { and, readModel } from '../../shared/read-model.js';
import { inTransaction, type Scope, type Viewer } from '../../shared/scope.js';
import { User } from '../identity/user.entity.js';
import type { NotificationPreferenceService } from './notification-preference.service.js';
import { NotificationDelivery, type DeliveryDeps, type DeliveryReport } from './notification.delivery.js';
import {
  DeliveryStatus,
  Notification,
  NotificationChannel,
  NotificationPriority,
  NotificationStatus,
  NotificationType,
} from './notification.entity.js';
import { NOTIFICATION_RECEIVED, type NotificationReceived } from './notification.events.js';
import type { WebhookService } from './webhook.service.js';

export type NotificationDeps = DeliveryDeps & { preferences: NotificationPreferenceService; webhooks: WebhookService };

/** The inbox's channel first: WEB, then EMAIL, then WEBHOOK, then the rest. */
const CHANNEL_ORDER = [
  NotificationChannel.WEB,
  NotificationChannel.EMAIL,
  NotificationChannel.WEBHOOK,
  NotificationChannel.PUSH,
  NotificationChannel.SMS,
];
const orderChannels = (channels: readonly NotificationChannel[]) => CHANNEL_ORDER.filter((c) => channels.includes(c));

export interface NotifyInput {
  userId: string;
  title: string;
  message?: string | null;
  type: NotificationType;
  priority?: NotificationPriority;
  /** Only this channel; omitted: the recipient's preference for the type. */
  channel?: NotificationChannel;
  data?: unknown;
  /** Deliver then, not now. */
  scheduledFor?: Date | null;
}

/** A notification's delivery on a further channel. */
export interface DeliveryOnChannel {
  id: string;
  channel: NotificationChannel;
  deliveryStatus: DeliveryStatus;
  deliveryAttempts: number;
  lastDeliveryError: string | null;
  sentAt: Date | null;
}

export interface NotificationFilter {
  /** Default: UNREAD and READ. */
  status?: NotificationStatus[] | null;
  type?: NotificationType | null;
  channel?: NotificationChannel | null;
  deliveryStatus?: DeliveryStatus[] | null;
}

export interface SendInput {
  userIds: string[];
  title: string;
  message?: string | null;
  type?: NotificationType | null;
  priority?: NotificationPriority | null;
  channel?: NotificationChannel | null;
  scheduledFor?: Date | null;
  data?: unknown;
}

/**
 * A notification reaches its user's inbox when it is due: one scheduled for later is
 * neither listed, counted nor markable before `scheduledFor` (a reminder for tomorrow
 * should not show up today), whatever its channel. `t` is the notifications table.
 */
const DUE = sql`(t.scheduled_for IS NULL OR t.scheduled_for <= now())`;
/** The user's inbox: their notifications, not the further channels' deliveries of them. */
const ownedBy = (userId: string): Sql => sql`t.user_id = ${userId}::uuid AND t.primary_id IS NULL`;

const snapshot = (n: Notification) => ({ status: n.status, readAt: n.readAt ?? null });

/**
 * Notifications: written in the caller's transaction, so a notification
 * exists exactly when the event it tells of committed; delivered after commit (see
 * notification.delivery.ts). Each user reads and changes only their own: another
 * user's notification is NOT_FOUND, not FORBIDDEN, so ids cannot be probed.
 */
export class NotificationService {
  private readonly delivery: NotificationDelivery;

  constructor(private readonly deps: NotificationDeps) {
    this.delivery = new NotificationDelivery(deps);
  }

  /**
   * Creates notifications inside `tx`, on the channels given, else the channels each
   * recipient chose for the type (WEB when none). The first of WEB, EMAIL, WEBHOOK is the
   * notification the inbox shows; each further channel (and each webhook) gets a delivery
   * row of its own pointing to it, retried independently. A WEB one due now is published
   * on `notificationReceived` with the commit; everything else waits for the delivery job.
   */
  async notify(tx: Scope, inputs: NotifyInput | NotifyInput[]): Promise<Notification[]> {
    const list = Array.isArray(inputs) ? inputs : [inputs];
    if (!list.length) return [];
    const channelsOf = await this.deps.preferences.channelsFor(
      tx.em,
      list.filter((i) => !i.channel),
    );
    const routes = list.map((input) => ({
      input,
      channels: orderChannels(input.channel ? [input.channel] : channelsOf(input.userId, input.type)),
    }));
    // The webhooks are looked up only when someone's notification goes to them.
    const webhookTypes = [
      ...new Set(routes.filter((r) => r.channels.includes(NotificationChannel.WEBHOOK)).map((r) => r.input.type)),
    ];
    const webhooksFor = await this.deps.webhooks.activeIdsFor(tx.em, webhookTypes);
    const now = new Date();
    const created: Notification[] = [];
    for (const { input, channels } of routes) {
      const due = !input.scheduledFor || input.scheduledFor <= now;
      let primary: Notification | null = null;
      for (const channel of channels) {
        const targets = channel === NotificationChannel.WEBHOOK ? (webhooksFor.get(input.type) ?? []) : [null];
        for (const webhookId of targets.length ? targets : [undefined]) {
          const n = this.createRow(tx, input, channel, now, {
            primary,
            webhookId,
            live: !primary && channel === NotificationChannel.WEB && due,
          });
          primary ??= n;
        }
      }
      created.push(primary!);
      if (primary!.channel === NotificationChannel.WEB && due) {
        await this.deps.bus.publish(tx.em, NOTIFICATION_RECEIVED, {
          id: primary!.id,
          userId: input.userId,
        } satisfies NotificationReceived);
      }
    }
    return created;
  }

  /**
   * One row: the inbox's notification (`primary` null) or a further channel's delivery of
   * it. `webhookId` undefined on WEBHOOK means no active webhook takes the type: the row
   * is FAILED at once, saying so, rather than silently missing.
   */
  private createRow(
    tx: Scope,
    input: NotifyInput,
    channel: NotificationChannel,
    now: Date,
    { primary, webhookId, live }: { primary: Notification | null; webhookId: string | null | undefined; live: boolean },
  ): Notification {
    const unroutable = channel === NotificationChannel.WEBHOOK && webhookId === undefined;
    return tx.em.create(Notification, {
      user: input.userId,
      title: input.title,
      message: input.message ?? null,
      type: input.type,
      priority: input.priority ?? NotificationPriority.NORMAL,
      channel,
      data: input.data ?? null,
      scheduledFor: input.scheduledFor ?? null,
      nextAttemptAt: input.scheduledFor ?? now,
      deliveryStatus: live ? DeliveryStatus.SENT : unroutable ? DeliveryStatus.FAILED : DeliveryStatus.PENDING,
      lastDeliveryError: unroutable ? `no active organisation webhook takes ${input.type} notifications` : null,
      sentAt: live ? now : null,
      primary,
      webhookId: webhookId ?? null,
    });
  }

  /** The viewer's own notifications that are due, newest first. */
  list(
    viewer: Viewer,
    fields: Iterable<string>,
    filter: NotificationFilter,
    page: PageArgs,
  ): Promise<Connection<Record<string, unknown>>> {
    const statuses = filter.status?.length ? filter.status : [NotificationStatus.UNREAD, NotificationStatus.READ];
    return paginate(
      this.deps.db,
      {
        model: readModel(Notification),
        fields,
        where: and([
          ownedBy(viewer.userId),
          DUE,
          sql`t.status = ANY(${statuses}::notification_status[])`,
          filter.type ? sql`t.type = ${filter.type}::notification_type` : null,
          filter.channel ? sql`t.channel = ${filter.channel}::notification_channel` : null,
          filter.deliveryStatus?.length
            ? sql`t.delivery_status = ANY(${filter.deliveryStatus}::delivery_status[])`
            : null,
        ]),
        sort: NEWEST_FIRST,
      },
      page,
    );
  }

  /** For each inbox notification id, its deliveries on further channels (oldest first). The ids are ones the viewer may read. */
  async deliveriesOf(ids: readonly string[]): Promise<DeliveryOnChannel[][]> {
    const rows = await this.deps.db.query<DeliveryOnChannel & { primaryId: string }>(sql`
      SELECT id, primary_id AS "primaryId", channel, delivery_status AS "deliveryStatus", delivery_attempts AS "deliveryAttempts",
             last_delivery_error AS "lastDeliveryError", sent_at AS "sentAt"
        FROM notifications WHERE primary_id = ANY(${[...ids]}::uuid[]) ORDER BY id`);
    const byPrimary = new Map<string, DeliveryOnChannel[]>(ids.map((id) => [id, []]));
    for (const { primaryId, ...d } of rows) byPrimary.get(primaryId)?.push(d);
    return ids.map((id) => byPrimary.get(id)!);
  }

  /** How many of the viewer's due notifications are UNREAD. */
  async unreadCount(viewer: Viewer): Promise<number> {
    const r = await this.deps.db.one<{ n: number }>(
      sql`SELECT count(*)::int AS n FROM notifications t WHERE ${ownedBy(viewer.userId)} AND t.status = 'UNREAD' AND ${DUE}`,
    );
    return r?.n ?? 0;
  }

  /** UNREAD → READ (an archived one stays archived but records when it was read). Idempotent. */
  async markRead(scope: Scope, viewer: Viewer, id: string): Promise<Notification> {
    return this.changeOwn(scope, viewer, id, 'notification.read', (n) => {
      if (n.status === NotificationStatus.UNREAD) n.status = NotificationStatus.READ;
      n.readAt ??= new Date();
    });
  }

  /** Marks every due UNREAD notification of the viewer READ; returns how many changed. */
  async markAllRead(scope: Scope, viewer: Viewer): Promise<number> {
    return inTransaction(scope, async (tx) => {
      const rows = await tx.em.execute<{ id: string }[]>(
        `UPDATE notifications t SET status = 'READ', read_at = coalesce(t.read_at, now())
          WHERE t.user_id = ? AND t.primary_id IS NULL AND t.status = 'UNREAD' AND (t.scheduled_for IS NULL OR t.scheduled_for <= now())
          RETURNING t.id`,
        [viewer.userId],
      );
      if (rows.length) {
        this.deps.audit.record(tx, {
          action: 'notification.readAll',
          entityType: 'Notification',
          entityId: null,
          before: { status: NotificationStatus.UNREAD },
          after: { status: NotificationStatus.READ, count: rows.length, ids: rows.map((r) => r.id) },
        });
      }
      return rows.length;
    });
  }

  /** Hides a notification from the default list (it stays readable with `status: [ARCHIVED]`). Idempotent. */
  async archive(scope: Scope, viewer: Viewer, id: string): Promise<Notification> {
    return this.changeOwn(scope, viewer, id, 'notification.archive', (n) => {
      n.status = NotificationStatus.ARCHIVED;
    });
  }

  /**
   * An administrator's notification to users (one per distinct user). Every recipient
   * must exist; the whole send is one transaction, audited per notification.
   */
  async send(scope: Scope, input: SendInput): Promise<Notification[]> {
    const userIds = [...new Set(input.userIds.map((id) => requireUuid(id, 'userIds')))];
    return inTransaction(scope, async (tx) => {
      const found = new Set((await tx.em.find(User, { id: { $in: userIds } }, { fields: ['id'] })).map((u) => u.id));
      const missing = userIds.find((id) => !found.has(id));
      if (missing) throw new NotFoundError('User', missing);
      const created = await this.notify(
        tx,
        userIds.map((userId) => ({
          userId,
          title: input.title,
          message: input.message ?? null,
          type: input.type ?? NotificationType.INFO,
          priority: input.priority ?? NotificationPriority.NORMAL,
          channel: input.channel ?? undefined,
          scheduledFor: input.scheduledFor ?? null,
          data: input.data ?? null,
        })),
      );
      for (const n of created) {
        this.deps.audit.record(tx, {
          action: 'notification.send',
          entityType: 'Notification',
          entityId: n.id,
          after: {
            userId: n.user.id,
            title: n.title,
            type: n.type,
            priority: n.priority,
            channel: n.channel,
            scheduledFor: n.scheduledFor ?? null,
          },
        });
      }
      return created;
    });
  }

  /**
   * One delivery pass over due notifications (the `work.deliverNotifications` job).
   * `em` is the job's unit of work; each outcome is recorded in its own transaction.
   */
  deliverDue(em: EntityManager): Promise<DeliveryReport> {
    return this.delivery.deliverDue(em);
  }

  /** Loads the viewer's own due notification, locked, applies `change` and audits it if anything changed. */
  private changeOwn(
    scope: Scope,
    viewer: Viewer,
    id: string,
    action: string,
    change: (n: Notification) => void,
  ): Promise<Notification> {
    const notificationId = requireUuid(id);
    return inTransaction(scope, async (tx) => {
      const n = await tx.em.findOne(
        Notification,
        {
          id: notificationId,
          user: viewer.userId,
          primary: null,
          $or: [{ scheduledFor: null }, { scheduledFor: { $lte: new Date() } }],
        },
        { lockMode: LockMode.PESSIMISTIC_WRITE },
      );
      if (!n) throw new NotFoundError('Notification', notificationId);
      const before = snapshot(n);
      change(n);
      const after = snapshot(n);
      if (before.status !== after.status || before.readAt !== after.readAt) {
        this.deps.audit.record(tx, { action, entityType: 'Notification', entityId: n.id, before, after });
      }
      return n;
    });
  }
}
