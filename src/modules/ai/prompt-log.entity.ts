import { DecimalScalar } from '../../shared/decimal.scalar.js';
import {
  Entity,
  Enum,
  Index,
  ManyToOne,
  PrimaryKey,
  PrimaryKeyProp,
  Property,
  type Opt,
  type Ref,
} from '@mikro-orm/core';
import { Field, Float, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { newId } from '../../shared/ids.js';
import { User } from '../identity/user.entity.js';

export enum PromptStatus {
  SUCCESS = 'SUCCESS',
  BLOCKED = 'BLOCKED',
  ERROR = 'ERROR',
}
registerEnumType(PromptStatus, { name: 'PromptStatus' });

/**
 * Every AI call, answered, blocked or failed (logs, every field of it).
 * Partitioned by month on createdAt (hence the composite key; partitions are created
 * ahead and dropped after the retention period by a job). References other than the
 * user are plain ids: a log outlives the conversation or task it belonged to.
 */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'prompt_logs' })
@Index({ properties: ['user', 'createdAt'] })
@Index({ properties: ['taskId'] })
@Index({ properties: ['intent'] })
@Index({ properties: ['status'] })
export class PromptLog {
  [PrimaryKeyProp]?: ['id', 'createdAt'];

  @Field(() => ID)
  @PrimaryKey({ type: 'uuid' })
  id: string = newId();

  @Field(() => Date)
  @PrimaryKey({ type: 'timestamptz', defaultRaw: 'now()' })
  createdAt: Date = new Date();

  @ManyToOne(() => User, { ref: true, deleteRule: 'cascade' })
  user!: Ref<User>;

  @Field(() => ID, { nullable: true }) @Property({ type: 'uuid', nullable: true }) taskId?: string | null;
  @Field(() => ID, { nullable: true }) @Property({ type: 'uuid', nullable: true }) projectId?: string | null;
  @Field(() => ID, { nullable: true }) @Property({ type: 'uuid', nullable: true }) conversationId?: string | null;
  @Field(() => ID, { nullable: true }) @Property({ type: 'uuid', nullable: true }) providerId?: string | null;
  @Field(() => String, { nullable: true }) @Property({ type: 'text', nullable: true }) agentType?: string | null;
  /** The API token the call came with (null: a session, or before tokens were recorded). */
  @Field(() => ID, { nullable: true }) @Property({ type: 'uuid', nullable: true }) apiTokenId?: string | null;

  @Field() @Property({ type: 'text' }) prompt!: string;
  @Field(() => String, { nullable: true }) @Property({ type: 'text', nullable: true }) systemMessage?: string | null;
  @Field(() => String, { nullable: true }) @Property({ type: 'text', nullable: true }) model?: string | null;
  @Field(() => String, { nullable: true }) @Property({ type: 'text', nullable: true }) response?: string | null;

  /** The classified intent and the classifier's confidence (0–1). */
  @Field(() => String, { nullable: true }) @Property({ type: 'text', nullable: true }) intent?: string | null;
  @Field(() => Float, { nullable: true })
  @Property({ type: 'decimal', precision: 4, scale: 3, nullable: true })
  confidence?: string | null;

  @Field(() => Float) @Property({ type: 'decimal', precision: 6, scale: 2, default: 0 }) deviationDelta: Opt<string> =
    '0';
  @Field(() => Float, { nullable: true })
  @Property({ type: 'decimal', precision: 6, scale: 2, nullable: true })
  scoreBefore?: string | null;
  @Field(() => Float, { nullable: true })
  @Property({ type: 'decimal', precision: 6, scale: 2, nullable: true })
  scoreAfter?: string | null;

  @Field(() => Int, { nullable: true }) @Property({ type: 'integer', nullable: true }) promptTokens?: number | null;
  @Field(() => Int, { nullable: true }) @Property({ type: 'integer', nullable: true }) completionTokens?: number | null;
  @Field(() => Int, { nullable: true }) @Property({ type: 'integer', nullable: true }) totalTokens?: number | null;
  @Field(() => Int, { nullable: true }) @Property({ type: 'integer', nullable: true }) responseTimeMs?: number | null;
  /** Exact decimal dollars as a string ("0.012300"). */
  @Field(() => DecimalScalar, { nullable: true })
  @Property({ type: 'decimal', precision: 18, scale: 6, nullable: true })
  costUsd?: string | null;
  /** USER (the caller's own key) or PLATFORM. */
  @Field(() => String, { nullable: true }) @Property({ type: 'text', nullable: true }) keySource?: string | null;

  @Field(() => String, { nullable: true }) @Property({ type: 'inet', nullable: true }) ip?: string | null;
  @Field(() => String, { nullable: true }) @Property({ type: 'text', nullable: true }) userAgent?: string | null;
  @Field(() => String, { nullable: true }) @Property({ type: 'text', nullable: true }) requestId?: string | null;

  @Field(() => PromptStatus)
  @Enum({ items: () => PromptStatus, nativeEnumName: 'prompt_status' })
  status!: PromptStatus;

  @Field(() => String, { nullable: true }) @Property({ type: 'text', nullable: true }) errorMessage?: string | null;
}
