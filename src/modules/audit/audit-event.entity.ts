import { BigIntType, Entity, Index, PrimaryKey, Property, type Opt } from '@mikro-orm/core';
import { GraphQLJSON } from 'graphql-scalars';
import { Field, Float, ID, ObjectType } from 'type-graphql';
import { newId } from '../../shared/ids.js';

/**
 * What happened, by whom, to what: written in the same transaction as the change it
 * records. The actor is a user id, or a named system actor
 * (`system`, `job:approval-expiry`, `agent:…`) with no user. No foreign key to users:
 * the record must outlive whatever it describes.
 *
 * The table is partitioned by month on `created_at` (hence the primary key with it),
 * append-only (a trigger refuses UPDATE, DELETE and TRUNCATE) and hash-chained: an event
 * is written unlinked, then the sealer (./audit-chain.ts) gives it its place `seq` in the
 * one chain, the previous link's hash and its own hash, once, right after its commit.
 */
@ObjectType('AuditEvent', { simpleResolvers: true })
@Entity({ tableName: 'audit_events' })
@Index({ properties: ['actorId', 'createdAt'] })
@Index({ properties: ['entityType', 'entityId'] })
@Index({ properties: ['action', 'createdAt'] })
@Index({ properties: ['seq'] })
@Index({
  name: 'audit_events_pending_index',
  expression: `create index "audit_events_pending_index" on "audit_events" ("created_at", "id") where "hash" is null`,
})
export class AuditEvent {
  @Field(() => ID)
  @PrimaryKey({ type: 'uuid' })
  id: string = newId();

  /** The partition key. */
  @Field(() => Date)
  @PrimaryKey({ type: 'timestamptz', defaultRaw: 'now()' })
  createdAt: Opt<Date> = new Date();

  @Field(() => ID, { nullable: true })
  @Property({ type: 'uuid', nullable: true })
  actorId?: string | null;

  @Field()
  @Property({ type: 'text' })
  actorLabel!: string;

  @Field()
  @Property({ type: 'text' })
  action!: string;

  @Field()
  @Property({ type: 'text' })
  entityType!: string;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  entityId?: string | null;

  @Field(() => GraphQLJSON, { nullable: true })
  @Property({ type: 'jsonb', nullable: true })
  before?: unknown;

  @Field(() => GraphQLJSON, { nullable: true })
  @Property({ type: 'jsonb', nullable: true })
  after?: unknown;

  /** SUCCESS or FAILURE (a refused login is audited too). */
  @Field(() => String)
  @Property({ type: 'text', default: 'SUCCESS' })
  outcome: Opt<string> = 'SUCCESS';

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  requestId?: string | null;

  @Field(() => String, { nullable: true })
  @Property({ type: 'inet', nullable: true })
  ip?: string | null;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  userAgent?: string | null;

  /** Place in the one hash chain (1, 2, …); null until sealed, moments after the commit. */
  @Field(() => Float, {
    nullable: true,
    description: 'Place in the hash chain (1, 2, …); null until sealed, moments after the commit.',
  })
  @Property({ type: new BigIntType('number'), nullable: true })
  seq?: Opt<number> | null;

  @Field(() => String, { nullable: true, description: 'The hash of the previous link (64 zeros for the first).' })
  @Property({ type: 'text', nullable: true })
  prevHash?: Opt<string> | null;

  @Field(() => String, {
    nullable: true,
    description: 'sha256 of the canonical JSON of this event, its seq and prevHash.',
  })
  @Property({ type: 'text', nullable: true })
  hash?: Opt<string> | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  sealedAt?: Opt<Date> | null;
}
