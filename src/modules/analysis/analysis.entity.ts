import { BigIntType, Entity, Enum, Index, ManyToOne, Property, type Opt, type Ref } from '@mikro-orm/core';
import { GraphQLJSON, GraphQLJSONObject } from 'graphql-scalars';
import { Field, Float, Int, ObjectType, registerEnumType } from 'type-graphql';
import { BaseEntity, TimestampedEntity } from '../../shared/base.entity.js';
import { User } from '../identity/user.entity.js';
import { Project } from '../projects/project.entity.js';

export enum AnalysisTaskType {
  STATIC = 'STATIC',
  DYNAMIC = 'DYNAMIC',
  GRAPH = 'GRAPH',
  AI = 'AI',
}
registerEnumType(AnalysisTaskType, { name: 'AnalysisTaskType' });

export enum AnalysisTaskStatus {
  QUEUED = 'QUEUED',
  RUNNING = 'RUNNING',
  COMPLETED = 'COMPLETED',
  FAILED = 'FAILED',
}
registerEnumType(AnalysisTaskStatus, { name: 'AnalysisTaskStatus' });

/** Follows the session's tasks: PENDING (none started), RUNNING, COMPLETED (all done), FAILED (all finished, one or more failed). */
export enum AnalysisSessionStatus {
  PENDING = 'PENDING',
  RUNNING = 'RUNNING',
  COMPLETED = 'COMPLETED',
  FAILED = 'FAILED',
}
registerEnumType(AnalysisSessionStatus, { name: 'AnalysisSessionStatus' });

/** A production analysis of a project: a set of tasks external workers run. */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'analysis_sessions' })
@Index({ properties: ['project', 'id'] })
export class AnalysisSession extends TimestampedEntity {
  @ManyToOne(() => Project, { ref: true, deleteRule: 'cascade' })
  project!: Ref<Project>;

  @ManyToOne(() => User, { ref: true, nullable: true, deleteRule: 'set null' })
  user?: Ref<User> | null;

  @Field()
  @Property({ type: 'text' })
  name!: string;

  @Field(() => GraphQLJSONObject, { description: 'What to analyse (repository, commit, paths…), passed to every task' })
  @Property({ type: 'jsonb', default: '{}' })
  input: Opt<Record<string, unknown>> = {};

  @Field(() => AnalysisSessionStatus)
  @Enum({
    items: () => AnalysisSessionStatus,
    nativeEnumName: 'analysis_session_status',
    default: AnalysisSessionStatus.PENDING,
  })
  status: Opt<AnalysisSessionStatus> = AnalysisSessionStatus.PENDING;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  completedAt?: Date | null;
}

/**
 * One unit of work in the queue. Claimed by a worker (a service token) with a lease:
 * `leaseToken` changes at every claim and must come back with the result, so a worker
 * whose lease ran out (and whose task was claimed again) cannot report it any more.
 */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'analysis_tasks' })
@Index({ properties: ['session', 'id'] })
@Index({
  name: 'analysis_tasks_claimable_index',
  expression: `create index "analysis_tasks_claimable_index" on "analysis_tasks" ("type", "id") where "status" in ('QUEUED', 'RUNNING')`,
})
export class AnalysisTask extends TimestampedEntity {
  @ManyToOne(() => AnalysisSession, { ref: true, deleteRule: 'cascade' })
  session!: Ref<AnalysisSession>;

  @ManyToOne(() => Project, { ref: true, deleteRule: 'cascade' })
  project!: Ref<Project>;

  @Field(() => AnalysisTaskType)
  @Enum({ items: () => AnalysisTaskType, nativeEnumName: 'analysis_task_type' })
  type!: AnalysisTaskType;

  @Field(() => AnalysisTaskStatus)
  @Enum({ items: () => AnalysisTaskStatus, nativeEnumName: 'analysis_task_status', default: AnalysisTaskStatus.QUEUED })
  status: Opt<AnalysisTaskStatus> = AnalysisTaskStatus.QUEUED;

  @Field(() => GraphQLJSONObject)
  @Property({ type: 'jsonb', default: '{}' })
  payload: Opt<Record<string, unknown>> = {};

  @Field(() => GraphQLJSON, { nullable: true })
  @Property({ type: 'jsonb', nullable: true })
  result?: unknown;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  error?: string | null;

  @Field(() => Int)
  @Property({ type: 'integer', default: 0 })
  attempts: Opt<number> = 0;

  @Field(() => Int)
  @Property({ type: 'integer' })
  maxAttempts!: number;

  @Field(() => String, {
    nullable: true,
    description: 'Returned to the claiming worker only; sent back with its report',
  })
  @Property({ type: 'uuid', nullable: true })
  leaseToken?: string | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  leaseExpiresAt?: Date | null;

  @Field(() => String, { nullable: true, description: 'The worker (service actor) that holds or last held it' })
  @Property({ type: 'text', nullable: true })
  claimedBy?: string | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  startedAt?: Date | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  completedAt?: Date | null;

  @Field(() => Int, { nullable: true })
  @Property({ type: 'integer', nullable: true })
  durationMs?: number | null;
}

/** A file a task produced (report, graph, trace), stored elsewhere: uri, sha256, size; removed from the index when it expires. */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'artifacts' })
@Index({ properties: ['session', 'id'] })
@Index({
  name: 'artifacts_expires_at_index',
  expression: `create index "artifacts_expires_at_index" on "artifacts" ("expires_at") where "expires_at" is not null`,
})
export class Artifact extends BaseEntity {
  @ManyToOne(() => AnalysisSession, { ref: true, deleteRule: 'cascade' })
  session!: Ref<AnalysisSession>;

  @ManyToOne(() => AnalysisTask, { ref: true, nullable: true, deleteRule: 'set null' })
  task?: Ref<AnalysisTask> | null;

  @Field()
  @Property({ type: 'text' })
  type!: string;

  @Field()
  @Property({ type: 'text' })
  uri!: string;

  @Field()
  @Property({ type: 'text' })
  sha256!: string;

  @Field(() => Float, { description: 'Bytes' })
  @Property({ type: new BigIntType('number') })
  sizeBytes!: number;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  expiresAt?: Date | null;
}

/** A code review a task produced (code_review_results). */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'code_review_results' })
@Index({ properties: ['session', 'id'] })
export class CodeReviewResult extends BaseEntity {
  @ManyToOne(() => AnalysisSession, { ref: true, deleteRule: 'cascade' })
  session!: Ref<AnalysisSession>;

  @ManyToOne(() => AnalysisTask, { ref: true, nullable: true, deleteRule: 'set null' })
  task?: Ref<AnalysisTask> | null;

  @Field()
  @Property({ type: 'text' })
  language!: string;

  @Field(() => Float, { description: '0..100' })
  @Property({ type: 'double precision' })
  score!: number;

  @Field(() => Int)
  @Property({ type: 'integer' })
  vulnerabilityCount!: number;

  @Field(() => Int)
  @Property({ type: 'integer' })
  issueCount!: number;

  @Field()
  @Property({ type: 'text' })
  modelUsed!: string;

  @Field(() => Int, { description: 'How long the review took, ms' })
  @Property({ type: 'integer' })
  reviewTimeMs!: number;

  @Field(() => GraphQLJSON, { nullable: true })
  @Property({ type: 'jsonb', nullable: true })
  details?: unknown;
}
