import { IsUUID, Max, MaxLength, Min } from 'class-validator';
import { Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { DecimalScalar } from '../../shared/decimal.scalar.js';
import { PromptStatus } from '../ai/prompt-log.entity.js';

@InputType()
export class SetUserQuotaInput {
  @Field(() => ID) @IsUUID() userId!: string;
  @Field(() => Int, { nullable: true, description: 'null: back to the default' })
  @Min(0)
  @Max(1_000_000)
  requestsPerHour?: number | null;
  @Field(() => Int, { nullable: true }) @Min(0) @Max(2_000_000_000) dailyTokenLimit?: number | null;
  @Field(() => Int, { nullable: true }) @Min(0) @Max(2_000_000_000) monthlyTokenLimit?: number | null;
  @Field(() => Int, { nullable: true, description: "null: the tier's (BASIC 50, PREMIUM 200, VIP 1000)" })
  @Min(0)
  @Max(10_000_000)
  monthlyMessageLimit?: number | null;
  @Field(() => DecimalScalar, { nullable: true, description: 'Dollars; null: back to the default' })
  dailyCostLimitUsd?: string | null;
  @Field(() => DecimalScalar, { nullable: true }) monthlyCostLimitUsd?: string | null;
}

export enum UsageWindow {
  DAY = 'DAY',
  MONTH = 'MONTH',
}
registerEnumType(UsageWindow, { name: 'UsageWindow', description: 'The current UTC day or month' });

export enum UsageGroupBy {
  USER = 'USER',
  PROVIDER = 'PROVIDER',
  MODEL = 'MODEL',
  PROJECT = 'PROJECT',
  AGENT = 'AGENT',
  DAY = 'DAY',
}
registerEnumType(UsageGroupBy, { name: 'UsageGroupBy' });

@ObjectType({ simpleResolvers: true })
export class Usage {
  @Field(() => UsageWindow) period!: UsageWindow;
  @Field(() => Date) periodStart!: Date;
  @Field(() => Int) requests!: number;
  @Field(() => Int, { description: 'Calls in flight (reserved, not yet settled)' }) inFlight!: number;
  @Field(() => Int) tokens!: number;
  @Field(() => DecimalScalar, { description: 'Exact decimal dollars' }) costUsd!: string;
  @Field(() => Int) tokenLimit!: number;
  @Field(() => Int, { nullable: true, description: 'Monthly messages (tier or override); null for a day' })
  messageLimit!: number | null;
  @Field(() => DecimalScalar, { nullable: true }) costLimitUsd!: string | null;
}

@ObjectType({ simpleResolvers: true })
export class UsageAggregate {
  @Field(() => String, {
    nullable: true,
    description: 'The group: a user id, provider name, model, project id, agent type or YYYY-MM-DD',
  })
  key!: string | null;
  @Field(() => Int) requests!: number;
  @Field(() => Int) inputTokens!: number;
  @Field(() => Int) outputTokens!: number;
  @Field(() => DecimalScalar) costUsd!: string;
}

@InputType()
export class PromptLogWhere {
  @Field(() => ID, { nullable: true, description: 'Admins only; others always see their own' }) @IsUUID() userId?:
    string | null;
  @Field(() => [PromptStatus], { nullable: true }) status?: PromptStatus[] | null;
  @Field(() => String, { nullable: true }) @MaxLength(50) intent?: string | null;
  @Field(() => ID, { nullable: true }) @IsUUID() taskId?: string | null;
  @Field(() => ID, { nullable: true }) @IsUUID() conversationId?: string | null;
}
