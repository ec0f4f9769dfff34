import { Entity, ManyToOne, Property, Unique, type Opt, type Ref } from '@mikro-orm/core';
import { BaseEntity } from '../../shared/base.entity.js';
import { User } from '../identity/user.entity.js';

/** Usage per day: one row per user, provider, model and UTC day, upserted per call. */
@Entity({ tableName: 'usage_daily' })
@Unique({ properties: ['user', 'provider', 'model', 'date'] })
export class UsageDaily extends BaseEntity {
  @ManyToOne(() => User, { ref: true, deleteRule: 'cascade' }) user!: Ref<User>;
  @Property({ type: 'text' }) provider!: string;
  @Property({ type: 'text' }) model!: string;
  @Property({ type: 'date' }) date!: string;
  @Property({ type: 'integer', default: 0 }) requests: Opt<number> = 0;
  @Property({ type: 'bigint', default: 0 }) tokensIn: Opt<string> = '0';
  @Property({ type: 'bigint', default: 0 }) tokensOut: Opt<string> = '0';
  @Property({ type: 'decimal', precision: 18, scale: 6, default: 0 }) costUsd: Opt<string> = '0';
}
