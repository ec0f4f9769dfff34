import { IsUUID, Length, MaxLength } from 'class-validator';
import { GraphQLJSON } from 'graphql-scalars';
import { Field, ID, InputType } from 'type-graphql';
import { ApprovalStatus } from './approval.entity.js';

@InputType()
export class RequestApprovalInput {
  @Field(() => ID, { nullable: true, description: 'The task the action belongs to (its project is implied)' })
  @IsUUID()
  taskId?: string | null;
  @Field(() => ID, { nullable: true, description: 'Or the project, for a project-wide action' }) @IsUUID() projectId?:
    string | null;
  @Field({ description: 'What is to be done, e.g. "deploy", "merge", "send_email"' })
  @Length(1, 100)
  actionType!: string;
  @Field(() => GraphQLJSON, { nullable: true }) details?: unknown;
  @Field(() => Date, { nullable: true, description: 'Default: APPROVAL_DEFAULT_TTL_HOURS from now' })
  expiresAt?: Date | null;
}

@InputType()
export class DecideApprovalInput {
  @Field(() => ID) @IsUUID() id!: string;
  @Field(() => String, { nullable: true }) @MaxLength(5000) notes?: string | null;
}

@InputType()
export class ApprovalWhere {
  @Field(() => [ApprovalStatus], { nullable: true }) status?: ApprovalStatus[] | null;
  @Field(() => ID, { nullable: true }) @IsUUID() projectId?: string | null;
  @Field(() => ID, { nullable: true }) @IsUUID() taskId?: string | null;
  @Field(() => Boolean, { nullable: true, description: 'Only approvals you requested' }) mine?: boolean | null;
  @Field(() => Boolean, { nullable: true, description: 'Only PENDING approvals you may decide (not your own)' })
  awaitingMe?: boolean | null;
}
