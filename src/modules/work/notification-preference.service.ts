import type { EntityManager } from '@mikro-orm/postgresql';
import sql from 'sql-template-tag';

import type { SqlClient } from '../../db/sql.js';
import { BadInputError } from '../../shared/errors.js';
import { inTransaction, type Scope, type Viewer } from '../../shared/scope.js';
import type { AuditService } from '../audit/index.js';
import { NotificationChannel, NotificationType } from './notification.entity.js';

/** The channels a preference may name (PUSH and SMS are only for notifications sent with that channel). */
export const PREFERENCE_CHANNELS: readonly NotificationChannel[] = [
  NotificationChannel.WEB,
  NotificationChannel.EMAIL,
  NotificationChannel.WEBHOOK,
];

/** Without a preference, a notification goes to the inbox only. */
export const DEFAULT_CHANNELS: readonly NotificationChannel[] = [NotificationChannel.WEB];

export interface PreferenceDeps {
  db: SqlClient;
  audit: AuditService;
}

export interface Preference {
  type: NotificationType;
  channels: NotificationChannel[];
  /** True when the user never chose (DEFAULT_CHANNELS). */
  isDefault: boolean;
}

/**
 * Each user's choice, per notification type, of the channels system notifications
 * reach them on: the inbox (WEB), e-mail, the organisation's webhooks. Read by
 * NotificationService.notify for every notification created without an explicit channel.
 */
export class NotificationPreferenceService {
  constructor(private readonly deps: PreferenceDeps) {}

  /** One entry per notification type, chosen or default. */
  async list(viewer: Viewer): Promise<Preference[]> {
    const rows = await this.deps.db.query<{ type: NotificationType; channels: NotificationChannel[] }>(
      sql`SELECT type, channels FROM notification_preferences WHERE user_id = ${viewer.userId}::uuid`,
    );
    const chosen = new Map(rows.map((r) => [r.type, r.channels]));
    return Object.values(NotificationType).map((type) => {
      const channels = chosen.get(type);
      return { type, channels: channels ?? [...DEFAULT_CHANNELS], isDefault: !channels };
    });
  }

  /** Sets the viewer's channels for one type (at least one: a notification is never silently dropped). Audited. */
  async set(
    scope: Scope,
    viewer: Viewer,
    type: NotificationType,
    channels: readonly NotificationChannel[],
  ): Promise<Preference> {
    const wanted = [...new Set(channels)];
    if (!wanted.length)
      throw BadInputError.field('channels', 'name at least one channel (WEB keeps it in the inbox only)');
    const refused = wanted.find((c) => !PREFERENCE_CHANNELS.includes(c));
    if (refused)
      throw BadInputError.field(
        'channels',
        `${refused} is not a preference channel (use ${PREFERENCE_CHANNELS.join(', ')})`,
      );
    return inTransaction(scope, async (tx) => {
      const [before] = await tx.em.execute<{ channels: string[] }[]>(
        `SELECT channels FROM notification_preferences WHERE user_id = ? AND type = ? FOR UPDATE`,
        [viewer.userId, type],
      );
      await tx.em.execute(
        `INSERT INTO notification_preferences (user_id, type, channels, updated_at) VALUES (?, ?, ?::text[], now())
         ON CONFLICT (user_id, type) DO UPDATE SET channels = EXCLUDED.channels, updated_at = now()`,
        // A PostgreSQL array literal: the ORM's execute would spread a JS array into a list (the values are enum names).
        [viewer.userId, type, `{${wanted.join(',')}}`],
      );
      this.deps.audit.record(tx, {
        action: 'notification.preference',
        entityType: 'User',
        entityId: viewer.userId,
        before: { type, channels: before?.channels ?? DEFAULT_CHANNELS },
        after: { type, channels: wanted },
      });
      return { type, channels: wanted, isDefault: false };
    });
  }

  /** The channels for each (user, type) pair, in the caller's transaction; `${userId}|${type}` → channels. */
  async channelsFor(
    em: EntityManager,
    pairs: readonly { userId: string; type: NotificationType }[],
  ): Promise<(userId: string, type: NotificationType) => NotificationChannel[]> {
    const userIds = [...new Set(pairs.map((p) => p.userId))];
    const rows = userIds.length
      ? await em.execute<{ user_id: string; type: NotificationType; channels: NotificationChannel[] }[]>(
          `SELECT user_id, type, channels FROM notification_preferences WHERE user_id IN (${userIds.map(() => '?').join(', ')})`,
          userIds,
        )
      : [];
    const chosen = new Map(rows.map((r) => [`${r.user_id}|${r.type}`, r.channels]));
    return (userId, type) => chosen.get(`${userId}|${type}`) ?? [...DEFAULT_CHANNELS];
  }
}
