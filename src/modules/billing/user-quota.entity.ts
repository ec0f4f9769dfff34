import { DecimalScalar } from '../../shared/decimal.scalar.js';
import { Entity, OneToOne, Property, type Opt, type Ref } from '@mikro-orm/core';
import { Field, Int, ObjectType } from 'type-graphql';
import { User } from '../identity/user.entity.js';

/**
 * An admin's overrides of a user's limits. A null limit falls back
 * to the tier's default (messages: BASIC 50, PREMIUM 200, VIP 1000 a month) or the
 * platform's; see quota.service.ts for the effective values.
 */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'user_quotas' })
export class UserQuota {
  @OneToOne(() => User, { ref: true, primary: true, owner: true, deleteRule: 'cascade' }) user!: Ref<User>;
  @Field(() => Int, { nullable: true }) @Property({ type: 'integer', nullable: true }) requestsPerHour?: number | null;
  @Field(() => Int, { nullable: true }) @Property({ type: 'bigint', nullable: true }) dailyTokenLimit?: number | null;
  @Field(() => Int, { nullable: true }) @Property({ type: 'bigint', nullable: true }) monthlyTokenLimit?: number | null;
  @Field(() => Int, { nullable: true }) @Property({ type: 'integer', nullable: true }) monthlyMessageLimit?:
    number | null;
  @Field(() => DecimalScalar, { nullable: true })
  @Property({ type: 'decimal', precision: 18, scale: 6, nullable: true })
  dailyCostLimitUsd?: string | null;
  @Field(() => DecimalScalar, { nullable: true })
  @Property({ type: 'decimal', precision: 18, scale: 6, nullable: true })
  monthlyCostLimitUsd?: string | null;
  @Field(() => Date)
  @Property({ type: 'timestamptz', defaultRaw: 'now()', onUpdate: () => new Date() })
  updatedAt: Opt<Date> = new Date();
}
