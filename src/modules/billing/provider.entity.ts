import { Entity, Enum, Property, type Opt } from '@mikro-orm/core';
import { Field, Int, ObjectType, registerEnumType } from 'type-graphql';
import { TimestampedEntity } from '../../shared/base.entity.js';
import type { SealedSecret } from '../../shared/crypto.js';
import { DecimalScalar } from '../../shared/decimal.scalar.js';

export enum ProviderType {
  OPENAI = 'OPENAI',
  ANTHROPIC = 'ANTHROPIC',
  GOOGLE = 'GOOGLE',
  HUGGINGFACE = 'HUGGINGFACE',
  /** Steward's built-in deterministic model, for development and demos. */
  LOCAL = 'LOCAL',
}
registerEnumType(ProviderType, { name: 'ProviderType' });

/**
 * A model endpoint (providers, the per-call prices). Prices are per
 * 1,000 tokens in exact decimal dollars; the platform key is envelope-encrypted and only
 * its last four characters ever leave the server.
 */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'providers' })
export class Provider extends TimestampedEntity {
  @Field() @Property({ type: 'text', unique: true }) name!: string;

  @Field(() => ProviderType)
  @Enum({ items: () => ProviderType, nativeEnumName: 'provider_type' })
  providerType!: ProviderType;

  @Field() @Property({ type: 'text' }) modelName!: string;
  @Field(() => String, {
    nullable: true,
    description: "Base URL of the endpoint (null: the vendor's API). Admins only (null for others).",
  })
  @Property({ type: 'text', nullable: true })
  apiEndpoint?: string | null;
  @Field(() => Boolean) @Property({ type: 'boolean', default: true }) active: Opt<boolean> = true;
  @Field(() => Boolean) @Property({ type: 'boolean', default: true }) platformProvided: Opt<boolean> = true;

  /** Decimal dollars per 1,000 input tokens, e.g. "0.003000". */
  @Field(() => DecimalScalar) @Property({ type: 'decimal', precision: 18, scale: 6 }) inputCostPer1k!: string;
  @Field(() => DecimalScalar) @Property({ type: 'decimal', precision: 18, scale: 6 }) outputCostPer1k!: string;
  @Field(() => Int) @Property({ type: 'integer', default: 4096 }) maxTokens: Opt<number> = 4096;
  @Field(() => Int) @Property({ type: 'integer', default: 60 }) timeoutSeconds: Opt<number> = 60;

  @Property({ type: 'jsonb', nullable: true, hidden: true }) platformKey?: SealedSecret | null;
  @Field(() => String, {
    nullable: true,
    description: 'The last four characters of the platform key. Admins only (null for others).',
  })
  @Property({ type: 'text', nullable: true })
  platformKeyLast4?: string | null;
}
