import { ArrayMaxSize, IsUUID, Length, Matches, Max, MaxLength, Min } from 'class-validator';
import { GraphQLJSONObject } from 'graphql-scalars';
import { Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { AgentType } from '../ai/agent.entity.js';
import { TaskPriority, TaskStatus } from './task.entity.js';

const TAG = /^[\w.:-]{1,50}$/;

@InputType()
export class CreateTaskInput {
  @Field() @Length(1, 300) title!: string;
  @Field(() => String, { nullable: true }) @MaxLength(20_000) description?: string | null;
  @Field(() => ID, { nullable: true, description: "Without a project the task is personal: yours and its assignees'." })
  @IsUUID()
  projectId?: string | null;
  @Field(() => TaskPriority, { nullable: true, defaultValue: TaskPriority.MEDIUM }) priority?: TaskPriority | null;
  @Field(() => Date, { nullable: true }) dueDate?: Date | null;
  @Field(() => [String], {
    nullable: true,
    description: 'Intents AI prompts for this task may have (prompt governance)',
  })
  @ArrayMaxSize(50)
  @Matches(TAG, { each: true, message: 'each intent must be 1–50 letters, digits, dots, colons or dashes' })
  allowedIntents?: string[] | null;
  @Field(() => String, { nullable: true }) @MaxLength(5000) scope?: string | null;
  @Field(() => [String], { nullable: true })
  @ArrayMaxSize(50)
  @Matches(TAG, { each: true, message: 'each tag must be 1–50 letters, digits, dots, colons or dashes' })
  tags?: string[] | null;
  @Field(() => [ID], {
    nullable: true,
    description: 'Tasks of the same project that must complete before this one starts',
  })
  @ArrayMaxSize(100)
  @IsUUID('all', { each: true })
  dependsOn?: string[] | null;
  @Field(() => ID, { nullable: true }) @IsUUID() parentId?: string | null;
  @Field(() => Int, { nullable: true, description: 'At most 1440 for CRITICAL tasks' })
  @Min(1)
  @Max(525_600)
  estimatedMinutes?: number | null;
  @Field(() => [AgentType], { nullable: true }) assignedAgents?: AgentType[] | null;
  @Field(() => AgentType, { nullable: true }) primaryAgent?: AgentType | null;
  @Field(() => GraphQLJSONObject, { nullable: true }) metadata?: Record<string, unknown> | null;
}

@InputType()
export class UpdateTaskInput {
  @Field(() => ID) @IsUUID() id!: string;
  @Field(() => String, { nullable: true }) @Length(1, 300) title?: string | null;
  @Field(() => String, { nullable: true }) @MaxLength(20_000) description?: string | null;
  @Field(() => TaskPriority, { nullable: true }) priority?: TaskPriority | null;
  @Field(() => Date, { nullable: true, description: 'Set clearDueDate to remove it' }) dueDate?: Date | null;
  @Field(() => Boolean, { nullable: true }) clearDueDate?: boolean | null;
  @Field(() => [String], { nullable: true })
  @ArrayMaxSize(50)
  @Matches(TAG, { each: true, message: 'each intent must be 1–50 letters, digits, dots, colons or dashes' })
  allowedIntents?: string[] | null;
  @Field(() => String, { nullable: true }) @MaxLength(5000) scope?: string | null;
  @Field(() => [String], { nullable: true })
  @ArrayMaxSize(50)
  @Matches(TAG, { each: true, message: 'each tag must be 1–50 letters, digits, dots, colons or dashes' })
  tags?: string[] | null;
  @Field(() => Int, { nullable: true }) @Min(1) @Max(525_600) estimatedMinutes?: number | null;
  @Field(() => GraphQLJSONObject, { nullable: true, description: 'What the work produced' }) results?: Record<
    string,
    unknown
  > | null;
  @Field(() => GraphQLJSONObject, { nullable: true }) metadata?: Record<string, unknown> | null;
}

@InputType()
export class UpdateTaskStatusInput {
  @Field(() => ID) @IsUUID() taskId!: string;
  @Field(() => TaskStatus) status!: TaskStatus;
}

@InputType()
export class AssignTaskInput {
  @Field(() => ID) @IsUUID() taskId!: string;
  @Field(() => ID) @IsUUID() userId!: string;
}

@InputType()
export class AssignAgentInput {
  @Field(() => ID) @IsUUID() taskId!: string;
  @Field(() => AgentType) agent!: AgentType;
  @Field(() => Boolean, { nullable: true, description: 'Make it the primary agent' }) primary?: boolean | null;
}

@InputType()
export class TaskDependencyInput {
  @Field(() => ID) @IsUUID() taskId!: string;
  @Field(() => ID) @IsUUID() dependsOnId!: string;
}

@InputType()
export class TaskWhere {
  @Field(() => ID, { nullable: true }) @IsUUID() projectId?: string | null;
  @Field(() => [TaskStatus], { nullable: true, description: 'Any of these' }) status?: TaskStatus[] | null;
  @Field(() => [TaskPriority], { nullable: true, description: 'Any of these' }) priority?: TaskPriority[] | null;
  @Field(() => ID, { nullable: true, description: 'Actively assigned to this user' }) @IsUUID() assigneeId?:
    string | null;
  @Field(() => String, { nullable: true }) @MaxLength(50) tag?: string | null;
  @Field(() => Date, { nullable: true }) dueBefore?: Date | null;
  @Field(() => Date, { nullable: true }) dueAfter?: Date | null;
  @Field(() => Boolean, { nullable: true, description: 'Open and past due (true), or not (false)' }) overdue?:
    boolean | null;
  @Field(() => ID, { nullable: true }) @IsUUID() parentId?: string | null;
  @Field(() => String, {
    nullable: true,
    description: 'Full-text search over title and description (web search syntax: "quoted", -not, or)',
  })
  @MaxLength(200)
  search?: string | null;
}

export enum TaskOrderField {
  CREATED_AT = 'CREATED_AT',
  UPDATED_AT = 'UPDATED_AT',
  DUE_DATE = 'DUE_DATE',
  PRIORITY = 'PRIORITY',
}
export enum OrderDirection {
  ASC = 'ASC',
  DESC = 'DESC',
}
registerEnumType(TaskOrderField, { name: 'TaskOrderField' });
registerEnumType(OrderDirection, { name: 'OrderDirection' });

@InputType()
export class TaskOrder {
  @Field(() => TaskOrderField) field!: TaskOrderField;
  @Field(() => OrderDirection, { defaultValue: OrderDirection.ASC }) direction!: OrderDirection;
}

export enum ActivityKind {
  TASK_CREATED = 'TASK_CREATED',
  TASK_COMPLETED = 'TASK_COMPLETED',
  TASK_FAILED = 'TASK_FAILED',
  APPROVAL_REQUESTED = 'APPROVAL_REQUESTED',
  APPROVAL_DECIDED = 'APPROVAL_DECIDED',
}
registerEnumType(ActivityKind, { name: 'ActivityKind' });

@ObjectType({ simpleResolvers: true })
export class DailyActivity {
  @Field({ description: 'UTC day, YYYY-MM-DD' }) day!: string;
  @Field(() => ActivityKind) kind!: ActivityKind;
  @Field(() => Int) count!: number;
}
