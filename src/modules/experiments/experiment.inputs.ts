import { IsUUID, Length, Matches, MaxLength } from 'class-validator';
import { GraphQLJSON, GraphQLJSONObject } from 'graphql-scalars';
import { Field, ID, InputType } from 'type-graphql';
import { DecimalScalar } from '../../shared/decimal.scalar.js';
import { ExperimentStatus, Verdict } from './experiment.entity.js';
import { BaselineOperator, VersionTag } from './version.entity.js';

@InputType()
export class UpdateVersionInput {
  @Field(() => ID) @IsUUID() projectId!: string;
  @Field(() => VersionTag) tag!: VersionTag;
  @Field(() => GraphQLJSONObject, {
    nullable: true,
    description: 'Stored as canonical JSON; its sha256 becomes the configHash',
  })
  modelConfig?: Record<string, unknown> | null;
  @Field(() => String, { nullable: true }) @MaxLength(10_000) changelog?: string | null;
  @Field({ description: 'Why (kept in the version history)' }) @Length(1, 2000) reason!: string;
}

@InputType()
export class DegradeVersionInput {
  @Field(() => ID) @IsUUID() projectId!: string;
  @Field() @Length(1, 2000) reason!: string;
}

@InputType()
export class SetBaselineInput {
  @Field(() => ID) @IsUUID() projectId!: string;
  @Field() @Length(1, 200) metricKey!: string;
  @Field(() => DecimalScalar) threshold!: string;
  @Field(() => BaselineOperator) operator!: BaselineOperator;
  @Field(() => Boolean, { nullable: true, description: 'Default: true (kept when changing an existing baseline)' })
  active?: boolean | null;
}

@InputType()
export class CreateExperimentInput {
  @Field(() => ID) @IsUUID() projectId!: string;
  @Field() @Length(1, 200) name!: string;
  @Field(() => GraphQLJSONObject, {
    description: 'Any JSON object; its canonical form (sorted keys) is hashed with sha256',
  })
  config!: Record<string, unknown>;
  @Field() @Length(1, 300) datasetId!: string;
}

@InputType()
export class SetExperimentStatusInput {
  @Field(() => ID) @IsUUID() id!: string;
  @Field(() => ExperimentStatus, { description: 'RUNNING (from CREATED), COMPLETED or FAILED (from RUNNING)' })
  status!: ExperimentStatus;
}

@InputType()
export class ExperimentWhere {
  @Field(() => [ExperimentStatus], { nullable: true }) status?: ExperimentStatus[] | null;
}

@InputType()
export class SubmitEvaluationInput {
  @Field(() => ID) @IsUUID() experimentId!: string;
  @Field(() => GraphQLJSONObject, { description: 'metric key -> number' }) metrics!: Record<string, unknown>;
}

@InputType()
export class OverrideEvaluationInput {
  @Field(() => ID) @IsUUID() evaluationId!: string;
  @Field(() => Verdict) verdict!: Verdict;
  @Field() @Length(1, 2000) reason!: string;
}

@InputType()
export class ProposePromotionInput {
  @Field(() => ID) @IsUUID() experimentId!: string;
  @Field(() => String, { nullable: true }) @MaxLength(2000) reason?: string | null;
}

@InputType()
export class QuarantineExperimentInput {
  @Field(() => ID) @IsUUID() experimentId!: string;
  @Field() @Length(1, 2000) reason!: string;
  @Field(() => GraphQLJSON, { nullable: true }) evidence?: unknown;
}

@InputType()
export class RequestReevaluationInput {
  @Field(() => ID) @IsUUID() quarantineRecordId!: string;
  @Field() @Length(1, 2000) reason!: string;
}

@InputType()
export class DecideReevaluationInput {
  @Field(() => ID) @IsUUID() id!: string;
  @Field({ description: 'true: APPROVED_RETRY (the config may run again); false: stays QUARANTINED' })
  approve!: boolean;
  @Field(() => String, { nullable: true }) @MaxLength(2000) notes?: string | null;
}

@InputType()
export class CreatePolicyInput {
  @Field() @Length(1, 200) name!: string;
  @Field({ description: 'The Rego package, dotted: steward.experiments' })
  @Matches(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/)
  packagePath!: string;
  @Field() @Length(1, 100_000) regoCode!: string;
  @Field(() => Boolean, { nullable: true }) active?: boolean | null;
}

@InputType()
export class SetPolicyActiveInput {
  @Field(() => ID) @IsUUID() id!: string;
  @Field() active!: boolean;
}

@InputType()
export class ProjectPolicyInput {
  @Field(() => ID) @IsUUID() projectId!: string;
  @Field(() => ID) @IsUUID() policyId!: string;
}
