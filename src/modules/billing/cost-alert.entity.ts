import { DecimalScalar } from '../../shared/decimal.scalar.js';
import { Entity, Enum, ManyToOne, Property, Unique, type Opt, type Ref } from '@mikro-orm/core';
import { Field, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { BaseEntity } from '../../shared/base.entity.js';
import { User } from '../identity/user.entity.js';

export enum CostAlertType {
  DAILY_80 = 'DAILY_80',
  DAILY_90 = 'DAILY_90',
  DAILY_100 = 'DAILY_100',
  MONTHLY_80 = 'MONTHLY_80',
  MONTHLY_90 = 'MONTHLY_90',
  MONTHLY_100 = 'MONTHLY_100',
}
registerEnumType(CostAlertType, { name: 'CostAlertType' });

/** A user's or a project's spend reached 80, 90 or 100% of a daily or monthly cost limit: once per period (unique). */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'cost_alerts' })
@Unique({ properties: ['user', 'alertType', 'periodStart'] })
export class CostAlert extends BaseEntity {
  /** The user whose limit it is; null for a project's alert. */
  @ManyToOne(() => User, { ref: true, deleteRule: 'cascade', nullable: true }) user?: Ref<User> | null;
  @Field(() => ID, { nullable: true, description: "The project whose limit it is; null for a user's alert." })
  @Property({ type: 'uuid', nullable: true })
  projectId?: string | null;
  @Field(() => CostAlertType)
  @Enum({ items: () => CostAlertType, nativeEnumName: 'cost_alert_type' })
  alertType!: CostAlertType;
  @Field(() => Int) @Property({ type: 'integer' }) thresholdPercentage!: number;
  @Field(() => Date) @Property({ type: 'timestamptz' }) periodStart!: Date;
  @Field(() => DecimalScalar) @Property({ type: 'decimal', precision: 18, scale: 6 }) spentUsd!: string;
  @Field(() => DecimalScalar) @Property({ type: 'decimal', precision: 18, scale: 6 }) limitUsd!: string;
  @Field(() => Boolean) @Property({ type: 'boolean', default: false }) acknowledged: Opt<boolean> = false;
  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  acknowledgedAt?: Date | null;
}
