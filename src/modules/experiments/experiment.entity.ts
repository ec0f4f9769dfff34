import { Entity, Enum, Index, ManyToOne, Property, Unique, type Opt, type Ref } from '@mikro-orm/core';
import { GraphQLJSON, GraphQLJSONObject } from 'graphql-scalars';
import { Field, Float, ObjectType, registerEnumType } from 'type-graphql';
import { BaseEntity, TimestampedEntity } from '../../shared/base.entity.js';
import { User } from '../identity/user.entity.js';
import { Project } from '../projects/project.entity.js';
import { Approval } from '../work/approval.entity.js';
import { Version, VersionTag } from './version.entity.js';

/** CREATED → RUNNING → COMPLETED | FAILED; COMPLETED → EVALUATING → PROMOTED | QUARANTINED. */
export enum ExperimentStatus {
  CREATED = 'CREATED',
  RUNNING = 'RUNNING',
  COMPLETED = 'COMPLETED',
  FAILED = 'FAILED',
  EVALUATING = 'EVALUATING',
  PROMOTED = 'PROMOTED',
  QUARANTINED = 'QUARANTINED',
}
registerEnumType(ExperimentStatus, { name: 'ExperimentStatus' });

export enum Verdict {
  PASS = 'PASS',
  FAIL = 'FAIL',
  MANUAL_REVIEW = 'MANUAL_REVIEW',
}
registerEnumType(Verdict, { name: 'Verdict' });

/** Whether the project's policies judged an evaluation: NOT_EVALUATED when no OPA server is configured (never reported as passed). */
export enum PolicyOutcome {
  NOT_EVALUATED = 'NOT_EVALUATED',
  PASSED = 'PASSED',
  FAILED = 'FAILED',
}
registerEnumType(PolicyOutcome, { name: 'PolicyOutcome' });

export enum PromotionStatus {
  PENDING = 'PENDING',
  APPROVED = 'APPROVED',
  REJECTED = 'REJECTED',
  EXPIRED = 'EXPIRED',
}
registerEnumType(PromotionStatus, { name: 'PromotionStatus' });

/** An experiment in a project's V1: a config (canonical JSON; its sha256 is `configHash`) run on a dataset. */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'experiments' })
@Index({ properties: ['project', 'id'] })
@Index({ properties: ['project', 'configHash'] })
export class Experiment extends TimestampedEntity {
  @ManyToOne(() => Project, { ref: true, deleteRule: 'cascade' })
  project!: Ref<Project>;

  @ManyToOne(() => Version, { ref: true, deleteRule: 'restrict' })
  version!: Ref<Version>;

  @Field()
  @Property({ type: 'text' })
  name!: string;

  @Field(() => GraphQLJSONObject, { description: 'The config, keys sorted (canonical JSON)' })
  @Property({ type: 'jsonb' })
  config!: Record<string, unknown>;

  @Field({ description: 'sha256 (hex) of the canonical JSON of the config' })
  @Property({ type: 'text' })
  configHash!: string;

  @Field()
  @Property({ type: 'text' })
  datasetId!: string;

  @Field(() => ExperimentStatus)
  @Enum({ items: () => ExperimentStatus, nativeEnumName: 'experiment_status', default: ExperimentStatus.CREATED })
  status: Opt<ExperimentStatus> = ExperimentStatus.CREATED;

  @ManyToOne(() => User, { ref: true, nullable: true, deleteRule: 'set null' })
  createdBy?: Ref<User> | null;
}

/**
 * Metrics submitted for a COMPLETED experiment and judged against the project's active
 * baselines. `verdict` is the effective one: the human override when there is one, else
 * the AI verdict.
 */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'evaluations' })
@Index({ properties: ['experiment', 'id'] })
export class Evaluation extends BaseEntity {
  @ManyToOne(() => Experiment, { ref: true, deleteRule: 'cascade' })
  experiment!: Ref<Experiment>;

  @Field(() => GraphQLJSONObject)
  @Property({ type: 'jsonb' })
  metrics!: Record<string, number>;

  @Field(() => Verdict)
  @Enum({ items: () => Verdict, nativeEnumName: 'verdict' })
  aiVerdict!: Verdict;

  @Field(() => Float, { description: '0..1; see EvaluationService for how it is computed' })
  @Property({ type: 'double precision' })
  confidence!: number;

  @Field(() => GraphQLJSON, {
    description: 'Per baseline: metric, operator, threshold, value, holds (null when missing)',
  })
  @Property({ type: 'jsonb' })
  checks!: unknown;

  @Field(() => PolicyOutcome)
  @Enum({ items: () => PolicyOutcome, nativeEnumName: 'policy_outcome' })
  policyOutcome!: PolicyOutcome;

  @Field(() => GraphQLJSON, {
    nullable: true,
    description: 'What each policy said (when evaluated), or why they were not',
  })
  @Property({ type: 'jsonb', nullable: true })
  policyResults?: unknown;

  @Field(() => Verdict, { nullable: true })
  @Enum({ items: () => Verdict, nativeEnumName: 'verdict', nullable: true })
  humanOverride?: Verdict | null;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  overrideReason?: string | null;

  @ManyToOne(() => User, { ref: true, nullable: true, deleteRule: 'set null' })
  overriddenBy?: Ref<User> | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  overriddenAt?: Date | null;

  @ManyToOne(() => User, { ref: true, nullable: true, deleteRule: 'set null' })
  submittedBy?: Ref<User> | null;
}

/** A proposal to promote an experiment's config from V1 to V2, decided through an Approval ('experiment.promote'). */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'promotions' })
@Index({ properties: ['project', 'id'] })
export class Promotion extends TimestampedEntity {
  @ManyToOne(() => Project, { ref: true, deleteRule: 'cascade' })
  project!: Ref<Project>;

  @ManyToOne(() => Experiment, { ref: true, deleteRule: 'cascade' })
  experiment!: Ref<Experiment>;

  @ManyToOne(() => Evaluation, { ref: true, deleteRule: 'cascade' })
  evaluation!: Ref<Evaluation>;

  @Field(() => VersionTag)
  @Enum({ items: () => VersionTag, nativeEnumName: 'version_tag' })
  fromTag!: VersionTag;

  @Field(() => VersionTag)
  @Enum({ items: () => VersionTag, nativeEnumName: 'version_tag' })
  toTag!: VersionTag;

  @ManyToOne(() => Approval, { ref: true, deleteRule: 'restrict' })
  @Unique()
  approval!: Ref<Approval>;

  @Field(() => PromotionStatus)
  @Enum({ items: () => PromotionStatus, nativeEnumName: 'promotion_status', default: PromotionStatus.PENDING })
  status: Opt<PromotionStatus> = PromotionStatus.PENDING;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  reason?: string | null;

  @ManyToOne(() => User, { ref: true, nullable: true, deleteRule: 'set null' })
  requestedBy?: Ref<User> | null;
}

/** The V1 experiment against V2 as it was when the promotion was approved. */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'comparison_reports' })
@Index({ properties: ['project', 'id'] })
export class ComparisonReport extends BaseEntity {
  @ManyToOne(() => Project, { ref: true, deleteRule: 'cascade' })
  project!: Ref<Project>;

  @ManyToOne(() => Experiment, { ref: true, deleteRule: 'cascade' })
  experiment!: Ref<Experiment>;

  @ManyToOne(() => Version, { ref: true, deleteRule: 'cascade' })
  version!: Ref<Version>;

  @ManyToOne(() => Promotion, { ref: true, nullable: true, deleteRule: 'set null' })
  promotion?: Ref<Promotion> | null;

  @Field(() => GraphQLJSON, {
    description: 'Per metric: experiment value, V2 value (null when V2 had none), delta, better',
  })
  @Property({ type: 'jsonb' })
  metrics!: unknown;

  @Field({ description: 'PROMOTE or KEEP_CURRENT' })
  @Property({ type: 'text' })
  recommendation!: string;

  @Field(() => Float)
  @Property({ type: 'double precision' })
  confidence!: number;
}
