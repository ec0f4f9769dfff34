import { IsUUID, MaxLength } from 'class-validator';
import { Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { PageInfo } from '../../shared/connection.js';
import { DecimalScalar } from '../../shared/decimal.scalar.js';

export enum UsageDimension {
  DAY = 'DAY',
  WEEK = 'WEEK',
  MONTH = 'MONTH',
  USER = 'USER',
  PROJECT = 'PROJECT',
  TASK = 'TASK',
  AGENT = 'AGENT',
  MODEL = 'MODEL',
  PROVIDER = 'PROVIDER',
  INTENT = 'INTENT',
  API_TOKEN = 'API_TOKEN',
  STATUS = 'STATUS',
}
registerEnumType(UsageDimension, {
  name: 'UsageDimension',
  description: 'What a usage report groups by. DAY, WEEK (ISO, starting Monday) and MONTH are UTC.',
});

@InputType()
export class UsageReportWhere {
  @Field(() => Date, { nullable: true, description: 'Calls at or after this instant' }) from?: Date | null;
  @Field(() => Date, { nullable: true, description: 'Calls before this instant' }) to?: Date | null;
  @Field(() => ID, { nullable: true }) @IsUUID() userId?: string | null;
  @Field(() => ID, { nullable: true }) @IsUUID() projectId?: string | null;
  @Field(() => ID, { nullable: true }) @IsUUID() taskId?: string | null;
  @Field(() => String, { nullable: true }) @MaxLength(200) model?: string | null;
  @Field(() => ID, { nullable: true }) @IsUUID() providerId?: string | null;
  @Field(() => ID, { nullable: true }) @IsUUID() apiTokenId?: string | null;
}

/** What every row and the totals count: every call, answered, blocked or failed; tokens and cost of answered calls only. */
@ObjectType({ simpleResolvers: true })
export class UsageTotals {
  @Field(() => Int, { description: 'Every call: answered, blocked and failed' }) requests!: number;
  @Field(() => Int, { description: 'Tokens of answered calls' }) inputTokens!: number;
  @Field(() => Int) outputTokens!: number;
  @Field(() => DecimalScalar, {
    description: 'Exact dollars of answered calls (blocked and failed calls cost nothing)',
  })
  costUsd!: string;
  @Field(() => Int, { description: 'Calls refused before reaching a provider (status, quotas, governance)' })
  blocked!: number;
  @Field(() => Int, { description: 'Calls whose provider failed' }) errors!: number;
}

/** One group of a report; a dimension's field is null when not grouped by it (or the calls had none). */
@ObjectType({ simpleResolvers: true })
export class UsageRow extends UsageTotals {
  @Field(() => String, { nullable: true, description: 'YYYY-MM-DD (UTC)' }) day!: string | null;
  @Field(() => String, { nullable: true, description: 'The Monday the ISO week starts, YYYY-MM-DD (UTC)' }) week!:
    string | null;
  @Field(() => String, { nullable: true, description: 'The first day of the month, YYYY-MM-DD (UTC)' }) month!:
    string | null;
  @Field(() => String, { nullable: true }) agentType!: string | null;
  @Field(() => String, { nullable: true }) model!: string | null;
  @Field(() => String, { nullable: true }) intent!: string | null;
  @Field(() => String, { nullable: true, description: 'SUCCESS, BLOCKED or ERROR' }) status!: string | null;
  // Ids behind the object fields (resolved by UsageReportResolver).
  userId!: string | null;
  projectId!: string | null;
  taskId!: string | null;
  providerId!: string | null;
  apiTokenId!: string | null;
}

@ObjectType({ simpleResolvers: true })
export class UsageReport {
  @Field(() => [UsageRow], {
    description: 'One page of groups: by the time dimensions first (oldest first), then most expensive first',
  })
  rows!: UsageRow[];
  @Field(() => UsageTotals, { description: 'Over every group, not only this page' }) totals!: UsageTotals;
  @Field(() => Int, { description: 'Groups in all' }) totalCount!: number;
  @Field(() => PageInfo) pageInfo!: PageInfo;
}

@ObjectType({ simpleResolvers: true, description: 'AI calls you may see were recorded: a usage report has moved.' })
export class UsageRecorded {
  @Field(() => Date) recordedAt!: Date;
}
