import {
  ArrayMaxSize,
  ArrayMinSize,
  IsInt,
  IsUUID,
  Length,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';
import { GraphQLJSON, GraphQLJSONObject } from 'graphql-scalars';
import { Field, Float, ID, InputType, Int } from 'type-graphql';
import { AnalysisTaskType } from './analysis.entity.js';
import { MAX_TASKS_PER_SESSION } from './analysis.service.js';

@InputType()
export class AnalysisTaskInput {
  @Field(() => AnalysisTaskType) type!: AnalysisTaskType;
  @Field(() => GraphQLJSONObject, { nullable: true }) payload?: Record<string, unknown> | null;
}

@InputType()
export class CreateAnalysisSessionInput {
  @Field(() => ID) @IsUUID() projectId!: string;
  @Field() @Length(1, 200) name!: string;
  @Field(() => GraphQLJSONObject, { nullable: true }) input?: Record<string, unknown> | null;
  @Field(() => [AnalysisTaskInput], { description: `1 to ${MAX_TASKS_PER_SESSION}` })
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_TASKS_PER_SESSION)
  @ValidateNested({ each: true })
  tasks!: AnalysisTaskInput[];
}

@InputType()
export class ReportAnalysisTaskInput {
  @Field(() => ID) @IsUUID() taskId!: string;
  @Field(() => ID, { description: 'The lease token the claim returned' }) @IsUUID() leaseToken!: string;
  @Field(() => GraphQLJSON, { nullable: true }) result?: unknown;
  @Field(() => String, { nullable: true, description: 'Set to report a failure' }) @MaxLength(10_000) error?:
    string | null;
  @Field(() => Boolean, { nullable: true, description: 'With error: queue it again while attempts remain' }) retry?:
    boolean | null;
}

@InputType()
export class AddArtifactInput {
  @Field(() => ID) @IsUUID() sessionId!: string;
  @Field(() => ID, { nullable: true }) @IsUUID() taskId?: string | null;
  @Field() @Length(1, 100) type!: string;
  @Field() @Length(1, 2000) uri!: string;
  @Field() @Matches(/^[0-9a-fA-F]{64}$/) sha256!: string;
  @Field(() => Float) @IsInt() @Min(0) @Max(Number.MAX_SAFE_INTEGER) sizeBytes!: number;
  @Field(() => Date, { nullable: true }) expiresAt?: Date | null;
}

@InputType()
export class AddCodeReviewResultInput {
  @Field(() => ID) @IsUUID() sessionId!: string;
  @Field(() => ID, { nullable: true }) @IsUUID() taskId?: string | null;
  @Field() @Length(1, 100) language!: string;
  @Field(() => Float) @Min(0) @Max(100) score!: number;
  @Field(() => Int) @Min(0) vulnerabilityCount!: number;
  @Field(() => Int) @Min(0) issueCount!: number;
  @Field() @Length(1, 200) modelUsed!: string;
  @Field(() => Int) @Min(0) reviewTimeMs!: number;
  @Field(() => GraphQLJSON, { nullable: true }) details?: unknown;
}
