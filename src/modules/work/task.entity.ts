import { Check, Entity, Enum, Index, ManyToOne, Property, type Opt, type Ref } from '@mikro-orm/core';
import { GraphQLJSONObject } from 'graphql-scalars';
import { Field, Int, ObjectType, registerEnumType } from 'type-graphql';
import { TimestampedEntity } from '../../shared/base.entity.js';
import { AgentType } from '../ai/agent.entity.js';
import { User } from '../identity/user.entity.js';
import { Project } from '../projects/project.entity.js';

export enum TaskStatus {
  PENDING = 'PENDING',
  ASSIGNED = 'ASSIGNED',
  IN_PROGRESS = 'IN_PROGRESS',
  COMPLETED = 'COMPLETED',
  FAILED = 'FAILED',
  CANCELLED = 'CANCELLED',
}
export enum TaskPriority {
  LOW = 'LOW',
  MEDIUM = 'MEDIUM',
  HIGH = 'HIGH',
  CRITICAL = 'CRITICAL',
}
/** The task_summary view: overdue, due within a day, or on track. */
export enum TaskUrgency {
  OVERDUE = 'OVERDUE',
  DUE_SOON = 'DUE_SOON',
  ON_TRACK = 'ON_TRACK',
}
registerEnumType(TaskStatus, { name: 'TaskStatus' });
registerEnumType(TaskPriority, { name: 'TaskPriority' });
registerEnumType(TaskUrgency, { name: 'TaskUrgency' });

export const OPEN_STATUSES = [TaskStatus.PENDING, TaskStatus.ASSIGNED, TaskStatus.IN_PROGRESS] as const;
/** A CRITICAL task is estimated at 24 hours at most (chk_priority_duration). */
export const CRITICAL_MAX_MINUTES = 1440;

/**
 * One task for three kinds of work: governed work (allowed intents, scope), personal
 * tasks (priority, dependencies, tags, due dates, durations) and
 * agent tasks (project, assigned agents, results, execution time). Status follows the
 * state machine in task.service.ts; the times it sets are never taken from clients.
 */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'tasks' })
@Index({ properties: ['project', 'status'] })
// A project's tasks newest first (ids are UUIDv7): the nested Project.tasks page reads this index.
@Index({ properties: ['project', 'id'] })
@Index({ properties: ['createdBy', 'status'] })
@Index({ properties: ['dueDate'] })
@Index({ properties: ['parent'] })
@Index({
  name: 'tasks_fulltext_index',
  expression: `create index "tasks_fulltext_index" on "tasks" using gin (to_tsvector('english', "title" || ' ' || coalesce("description", '')))`,
})
@Index({ name: 'tasks_tags_index', expression: `create index "tasks_tags_index" on "tasks" using gin ("tags")` })
// The GIN index on assigned agents: an agent's open work (Agent.currentLoad) is `assigned_agents @> ARRAY[type]`.
@Index({
  name: 'tasks_assigned_agents_index',
  expression: `create index "tasks_assigned_agents_index" on "tasks" using gin ("assigned_agents")`,
})
@Check({
  name: 'tasks_critical_estimate_check',
  expression: `"priority" <> 'CRITICAL' OR "estimated_minutes" IS NULL OR "estimated_minutes" <= ${CRITICAL_MAX_MINUTES}`,
})
export class Task extends TimestampedEntity {
  @Field()
  @Property({ type: 'text' })
  title!: string;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  description?: string | null;

  @Field(() => TaskStatus)
  @Enum({ items: () => TaskStatus, nativeEnumName: 'task_status', default: TaskStatus.PENDING })
  status: Opt<TaskStatus> = TaskStatus.PENDING;

  @Field(() => TaskPriority)
  @Enum({ items: () => TaskPriority, nativeEnumName: 'task_priority', default: TaskPriority.MEDIUM })
  priority: Opt<TaskPriority> = TaskPriority.MEDIUM;

  @ManyToOne(() => Project, { ref: true, nullable: true, deleteRule: 'cascade' })
  project?: Ref<Project> | null;

  @ManyToOne(() => Task, { ref: true, nullable: true, deleteRule: 'set null' })
  parent?: Ref<Task> | null;

  @ManyToOne(() => User, { ref: true, deleteRule: 'restrict' })
  createdBy!: Ref<User>;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  dueDate?: Date | null;

  @Field(() => Int, { nullable: true })
  @Property({ type: 'integer', nullable: true })
  estimatedMinutes?: number | null;

  @Field(() => Int, { nullable: true })
  @Property({ type: 'integer', nullable: true })
  actualMinutes?: number | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  startedAt?: Date | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  completedAt?: Date | null;

  @Field(() => Int, { nullable: true })
  @Property({ type: 'integer', nullable: true })
  executionTimeSeconds?: number | null;

  @Field(() => [String])
  @Property({ type: 'text[]', default: '{}' })
  tags: Opt<string[]> = [];

  /** Intents the prompts made for this task may have; empty: anything goes. */
  @Field(() => [String])
  @Property({ type: 'text[]', default: '{}' })
  allowedIntents: Opt<string[]> = [];

  /** What work is in scope, in words (task_scope). */
  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  scope?: string | null;

  @Field(() => [AgentType])
  @Property({ type: 'text[]', default: '{}' })
  assignedAgents: Opt<AgentType[]> = [];

  @Field(() => AgentType, { nullable: true })
  @Property({ type: 'text', nullable: true })
  primaryAgent?: AgentType | null;

  @Field(() => GraphQLJSONObject, { nullable: true })
  @Property({ type: 'jsonb', nullable: true })
  results?: Record<string, unknown> | null;

  @Field(() => GraphQLJSONObject)
  @Property({ type: 'jsonb', default: '{}' })
  metadata: Opt<Record<string, unknown>> = {};

  /** Soft deletion: a deleted task leaves every list and path, keeps its approvals and history, and an admin may restore it. */
  @Field(() => Date, {
    nullable: true,
    description: 'When it was deleted (only admins see deleted tasks, through deletedTasks).',
  })
  @Property({ type: 'timestamptz', nullable: true })
  deletedAt?: Date | null;

  @ManyToOne(() => User, { ref: true, nullable: true, deleteRule: 'set null' })
  deletedBy?: Ref<User> | null;

  /** When assignees were told it is overdue (the overdue job tells them once). */
  @Property({ type: 'timestamptz', nullable: true })
  overdueNotifiedAt?: Date | null;
}
