import { Entity, Enum, Index, ManyToOne, Property, Unique, type Opt, type Ref } from '@mikro-orm/core';
import { GraphQLJSON, GraphQLJSONObject } from 'graphql-scalars';
import { Field, ObjectType, registerEnumType } from 'type-graphql';
import { TimestampedEntity } from '../../shared/base.entity.js';
import { User } from '../identity/user.entity.js';
import { Project } from '../projects/project.entity.js';
import { Experiment } from './experiment.entity.js';

export enum QuarantineStatus {
  QUARANTINED = 'QUARANTINED',
  UNDER_REVIEW = 'UNDER_REVIEW',
  APPROVED_RETRY = 'APPROVED_RETRY',
}
registerEnumType(QuarantineStatus, { name: 'QuarantineStatus' });

export enum ReevaluationStatus {
  PENDING = 'PENDING',
  APPROVED = 'APPROVED',
  REJECTED = 'REJECTED',
}
registerEnumType(ReevaluationStatus, { name: 'ReevaluationStatus' });

/**
 * The blacklist (the requirements have both a blacklist and quarantine records; they are one
 * thing here): one record per project and config hash. While QUARANTINED or
 * UNDER_REVIEW, experiments with that config are refused; APPROVED_RETRY lifts the
 * block. A new failure of the same config quarantines it again (same record).
 * Per project, not global: projects are separate tenants and must not see each other's configs.
 */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'quarantine_records' })
@Unique({ properties: ['project', 'configHash'] })
export class QuarantineRecord extends TimestampedEntity {
  @ManyToOne(() => Project, { ref: true, deleteRule: 'cascade' })
  project!: Ref<Project>;

  @Field()
  @Property({ type: 'text' })
  configHash!: string;

  @ManyToOne(() => Experiment, { ref: true, nullable: true, deleteRule: 'set null' })
  experiment?: Ref<Experiment> | null;

  @Field()
  @Property({ type: 'text' })
  reason!: string;

  @Field(() => GraphQLJSON, { description: "What led to it: the evaluation, its checks, or an admin's statement" })
  @Property({ type: 'jsonb' })
  evidence!: unknown;

  @Field(() => GraphQLJSONObject, { nullable: true, description: 'The metrics that failed their baselines' })
  @Property({ type: 'jsonb', nullable: true })
  failureMetrics?: Record<string, unknown> | null;

  @Field(() => QuarantineStatus)
  @Enum({ items: () => QuarantineStatus, nativeEnumName: 'quarantine_status', default: QuarantineStatus.QUARANTINED })
  status: Opt<QuarantineStatus> = QuarantineStatus.QUARANTINED;

  @ManyToOne(() => User, { ref: true, nullable: true, deleteRule: 'set null' })
  quarantinedBy?: Ref<User> | null;
}

/** A request to let a quarantined config run again; an admin approves (APPROVED_RETRY) or rejects it. */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'reevaluation_requests' })
@Index({ properties: ['quarantineRecord', 'status'] })
export class ReevaluationRequest extends TimestampedEntity {
  @ManyToOne(() => QuarantineRecord, { ref: true, deleteRule: 'cascade' })
  quarantineRecord!: Ref<QuarantineRecord>;

  @Field()
  @Property({ type: 'text' })
  reason!: string;

  @Field(() => ReevaluationStatus)
  @Enum({ items: () => ReevaluationStatus, nativeEnumName: 'reevaluation_status', default: ReevaluationStatus.PENDING })
  status: Opt<ReevaluationStatus> = ReevaluationStatus.PENDING;

  @ManyToOne(() => User, { ref: true, nullable: true, deleteRule: 'set null' })
  requestedBy?: Ref<User> | null;

  @ManyToOne(() => User, { ref: true, nullable: true, deleteRule: 'set null' })
  decidedBy?: Ref<User> | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  decidedAt?: Date | null;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  notes?: string | null;
}
