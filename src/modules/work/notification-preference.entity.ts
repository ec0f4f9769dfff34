import { Entity, Enum, ManyToOne, PrimaryKeyProp, Property, type Opt, type Ref } from '@mikro-orm/core';
import { User } from '../identity/user.entity.js';
import { NotificationChannel, NotificationType } from './notification.entity.js';

/**
 * The channels one user wants one type of notification on. No row: WEB only (the
 * inbox, live), which is what every notification did before preferences existed.
 */
@Entity({ tableName: 'notification_preferences' })
export class NotificationPreference {
  [PrimaryKeyProp]?: ['user', 'type'];

  @ManyToOne(() => User, { ref: true, primary: true, deleteRule: 'cascade' })
  user!: Ref<User>;

  @Enum({ items: () => NotificationType, nativeEnumName: 'notification_type', primary: true })
  type!: NotificationType;

  @Property({ type: 'text[]' })
  channels!: NotificationChannel[];

  @Property({ type: 'timestamptz', defaultRaw: 'now()', onUpdate: () => new Date() })
  updatedAt: Opt<Date> = new Date();
}
