import { Entity, OneToOne, Property, type Opt, type Ref } from '@mikro-orm/core';
import { Field, Float, Int, ObjectType } from 'type-graphql';
import { Provider } from './provider.entity.js';

/** The health job's view of a provider: unhealthy providers are skipped. */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'provider_health' })
export class ProviderHealth {
  @OneToOne(() => Provider, { ref: true, primary: true, owner: true, deleteRule: 'cascade' }) provider!: Ref<Provider>;
  @Field(() => Boolean) @Property({ type: 'boolean', default: true }) isHealthy: Opt<boolean> = true;
  @Field(() => Date, { nullable: true }) @Property({ type: 'timestamptz', nullable: true }) lastCheckAt?: Date | null;
  @Field(() => String, {
    nullable: true,
    description: 'Why the last check failed (null after a success). Admins only (null for others).',
  })
  @Property({ type: 'text', nullable: true })
  lastError?: string | null;
  @Field(() => Int) @Property({ type: 'integer', default: 0 }) consecutiveFailures: Opt<number> = 0;
  @Field(() => Float, { nullable: true, description: 'How long the last check took, in milliseconds' })
  @Property({ type: 'integer', nullable: true })
  responseTimeMs?: number | null;
  @Field(() => Int) @Property({ type: 'integer', default: 0 }) checks: Opt<number> = 0;
  @Field(() => Int) @Property({ type: 'integer', default: 0 }) successes: Opt<number> = 0;
  @Field(() => Date)
  @Property({ type: 'timestamptz', defaultRaw: 'now()', onUpdate: () => new Date() })
  updatedAt: Opt<Date> = new Date();
}
