import { Entity, Enum, ManyToOne, PrimaryKeyProp, Property, type Opt, type Ref } from '@mikro-orm/core';
import { registerEnumType } from 'type-graphql';
import { User } from '../identity/user.entity.js';

export enum UsagePeriod {
  HOUR = 'HOUR',
  DAY = 'DAY',
  MONTH = 'MONTH',
}
registerEnumType(UsagePeriod, { name: 'UsagePeriod' });

/**
 * A user's usage in one period (an hour, a UTC day, a UTC month): what was used and what
 * is reserved by calls in flight. Quotas are checked and reserved against these rows
 * atomically; the MONTH row is also the monthly usage tracking.
 */
@Entity({ tableName: 'usage_counters' })
export class UsageCounter {
  [PrimaryKeyProp]?: ['user', 'period', 'periodStart'];
  @ManyToOne(() => User, { ref: true, primary: true, deleteRule: 'cascade' }) user!: Ref<User>;
  @Enum({ items: () => UsagePeriod, nativeEnumName: 'usage_period', primary: true }) period!: UsagePeriod;
  @Property({ type: 'timestamptz', primary: true }) periodStart!: Date;
  @Property({ type: 'integer', default: 0 }) requests: Opt<number> = 0;
  @Property({ type: 'integer', default: 0 }) messages: Opt<number> = 0;
  @Property({ type: 'bigint', default: 0 }) tokens: Opt<string> = '0';
  @Property({ type: 'decimal', precision: 18, scale: 6, default: 0 }) costUsd: Opt<string> = '0';
  @Property({ type: 'integer', default: 0 }) reservedRequests: Opt<number> = 0;
  @Property({ type: 'bigint', default: 0 }) reservedTokens: Opt<string> = '0';
  @Property({ type: 'decimal', precision: 18, scale: 6, default: 0 }) reservedCostUsd: Opt<string> = '0';
}
