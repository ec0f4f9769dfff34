import { Check, Entity, Enum, Index, ManyToOne, Property, type Opt, type Ref } from '@mikro-orm/core';
import { GraphQLJSON } from 'graphql-scalars';
import { Field, ObjectType, registerEnumType } from 'type-graphql';
import { TimestampedEntity } from '../../shared/base.entity.js';
import { User } from '../identity/user.entity.js';
import { Project } from '../projects/project.entity.js';
import { Task } from './task.entity.js';

export enum ApprovalStatus {
  PENDING = 'PENDING',
  APPROVED = 'APPROVED',
  REJECTED = 'REJECTED',
  EXPIRED = 'EXPIRED',
}
registerEnumType(ApprovalStatus, { name: 'ApprovalStatus' });

/**
 * A human decision an action waits for. Requested by a user or by a named
 * system actor (a free-text requester, e.g. an agent with a service token).
 * Decided once, never by its requester; an approved_by/rejected_by pair becomes
 * one decidedBy with the status saying which. Project is always set when the task has one,
 * so access and subscriptions follow the project.
 */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'approvals' })
@Index({ properties: ['project', 'status'] })
@Index({ properties: ['task'] })
@Index({ properties: ['requestedBy', 'status'] })
@Index({
  name: 'approvals_pending_expiry_index',
  expression: `create index "approvals_pending_expiry_index" on "approvals" ("expires_at") where "status" = 'PENDING'`,
})
@Check({ name: 'approvals_subject_check', expression: `"task_id" IS NOT NULL OR "project_id" IS NOT NULL` })
@Check({ name: 'approvals_decision_check', expression: `("status" = 'PENDING') = ("decided_at" IS NULL)` })
export class Approval extends TimestampedEntity {
  @ManyToOne(() => Task, { ref: true, nullable: true, deleteRule: 'cascade' })
  task?: Ref<Task> | null;

  @ManyToOne(() => Project, { ref: true, nullable: true, deleteRule: 'cascade' })
  project?: Ref<Project> | null;

  @Field()
  @Property({ type: 'text' })
  actionType!: string;

  @Field(() => GraphQLJSON, { nullable: true })
  @Property({ type: 'jsonb', nullable: true })
  details?: unknown;

  @Field(() => ApprovalStatus)
  @Enum({ items: () => ApprovalStatus, nativeEnumName: 'approval_status', default: ApprovalStatus.PENDING })
  status: Opt<ApprovalStatus> = ApprovalStatus.PENDING;

  @ManyToOne(() => User, { ref: true, nullable: true, deleteRule: 'set null' })
  requestedBy?: Ref<User> | null;

  /** The system actor that asked (a service token's actor), when no user did. */
  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  requestedByActor?: string | null;

  @ManyToOne(() => User, { ref: true, nullable: true, deleteRule: 'set null' })
  decidedBy?: Ref<User> | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  decidedAt?: Date | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  expiresAt?: Date | null;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  notes?: string | null;
}
