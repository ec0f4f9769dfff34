import { IsUUID, Length, Max, MaxLength, Min } from 'class-validator';
import { Field, ID, InputType, Int } from 'type-graphql';
import { DecimalScalar } from '../../shared/decimal.scalar.js';
import { ProviderType } from './provider.entity.js';

/** The contract's CreateProviderInput, plus `active` and `platformProvided`. Admins only. */
@InputType()
export class CreateProviderInput {
  @Field({ description: 'Unique, shown to users' }) @Length(1, 100) name!: string;
  @Field(() => ProviderType) providerType!: ProviderType;
  @Field({ description: `The model asked for, e.g. "gpt-4o-mini", "claude-sonnet-4-5"; LOCAL: "steward-local-1"` })
  @Length(1, 200)
  modelName!: string;
  @Field(() => String, {
    nullable: true,
    description:
      "Base URL of an OpenAI-compatible (or Anthropic-compatible) endpoint, e.g. http://localhost:11434/v1; default: the vendor's API. Not for LOCAL.",
  })
  @MaxLength(2000)
  apiEndpoint?: string | null;
  @Field(() => String, {
    nullable: true,
    description: 'The platform key: encrypted at rest; only its last four characters are ever shown. Not for LOCAL.',
  })
  apiKey?: string | null;
  @Field(() => DecimalScalar, { description: 'US dollars per 1,000 prompt tokens, e.g. "0.000150"' })
  inputCostPer1k!: string;
  @Field(() => DecimalScalar, { description: 'US dollars per 1,000 completion tokens' }) outputCostPer1k!: string;
  @Field(() => Int, { nullable: true, description: 'The completion cap per call (default 4096)' })
  @Min(1)
  @Max(1_000_000)
  maxTokens?: number | null;
  @Field(() => Int, { nullable: true, description: 'Seconds a call may take, streaming included (default 60)' })
  @Min(1)
  @Max(600)
  timeoutSeconds?: number | null;
  @Field(() => Boolean, { nullable: true, description: 'Offered to users (default true)' }) active?: boolean | null;
  @Field(() => Boolean, {
    nullable: true,
    description: 'Users may call it with the platform key (default true); otherwise only with their own key',
  })
  platformProvided?: boolean | null;
}

/** Changes what is given; `apiKey` replaces the platform key, `removeApiKey` drops it. */
@InputType()
export class UpdateProviderInput {
  @Field(() => ID) @IsUUID() id!: string;
  @Field(() => String, { nullable: true }) @Length(1, 100) name?: string | null;
  @Field(() => String, { nullable: true }) @Length(1, 200) modelName?: string | null;
  @Field(() => String, { nullable: true, description: "null (explicitly) returns to the vendor's API" })
  @MaxLength(2000)
  apiEndpoint?: string | null;
  @Field(() => String, { nullable: true, description: 'A new platform key (replaces the old one)' }) apiKey?:
    string | null;
  @Field(() => Boolean, { nullable: true, description: 'Remove the platform key' }) removeApiKey?: boolean | null;
  @Field(() => DecimalScalar, { nullable: true }) inputCostPer1k?: string | null;
  @Field(() => DecimalScalar, { nullable: true }) outputCostPer1k?: string | null;
  @Field(() => Int, { nullable: true }) @Min(1) @Max(1_000_000) maxTokens?: number | null;
  @Field(() => Int, { nullable: true }) @Min(1) @Max(600) timeoutSeconds?: number | null;
  @Field(() => Boolean, { nullable: true }) active?: boolean | null;
  @Field(() => Boolean, { nullable: true }) platformProvided?: boolean | null;
}

@InputType()
export class SetMyProviderKeyInput {
  @Field(() => ID) @IsUUID() providerId!: string;
  @Field({
    description:
      "Your own API key for this provider: encrypted at rest, used before the platform's; only its last four characters are ever shown",
  })
  apiKey!: string;
}

@InputType()
export class ProviderWhere {
  @Field(() => Boolean, { nullable: true, description: 'Admins only (others always see active providers only)' })
  active?: boolean | null;
  @Field(() => [ProviderType], { nullable: true }) providerType?: ProviderType[] | null;
  @Field(() => String, { nullable: true, description: 'Part of the name or model' }) @MaxLength(100) search?:
    string | null;
}
