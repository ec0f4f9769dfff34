import { Entity, Index, Property, type Opt } from '@mikro-orm/core';
import { Field, ID, ObjectType } from 'type-graphql';
import { GraphQLJSON } from 'graphql-scalars';
import { BaseEntity } from '../../shared/base.entity.js';

/**
 * What happened, by whom, to what: written in the same transaction as the change it
 * records (seeds 001, 003, 004). The actor is a user id, or a named system actor
 * (`system`, `job:approval-expiry`, `agent:…`) with no user. No foreign key to users:
 * the record must outlive whatever it describes.
 */
@ObjectType('AuditEvent', { simpleResolvers: true })
@Entity({ tableName: 'audit_events' })
@Index({ properties: ['actorId', 'createdAt'] })
@Index({ properties: ['entityType', 'entityId'] })
@Index({ properties: ['action', 'createdAt'] })
export class AuditEvent extends BaseEntity {
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
}
