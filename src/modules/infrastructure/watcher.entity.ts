import { Entity, Index, ManyToOne, Property, type Opt, type Ref } from '@mikro-orm/core';
import { GraphQLJSON, GraphQLJSONObject } from 'graphql-scalars';
import { Field, Int, ObjectType } from 'type-graphql';
import { BaseEntity, TimestampedEntity } from '../../shared/base.entity.js';
import { User } from '../identity/user.entity.js';

/**
 * A watcher: a process outside Steward that looks at a source (a mailbox, a
 * folder, a chat) and turns what it finds into work. Steward keeps its configuration
 * and, from the runs it reports with a service token, when it last ran, its last error
 * and how many errors it had. Config is plain JSON: keep credentials out of it.
 */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'watchers' })
export class Watcher extends TimestampedEntity {
  @Field({ description: 'Unique' })
  @Property({ type: 'text', unique: true })
  name!: string;

  @Field({ description: 'e.g. gmail, filesystem, whatsapp' })
  @Property({ type: 'text' })
  watcherType!: string;

  @Field(() => GraphQLJSONObject)
  @Property({ type: 'jsonb', default: '{}' })
  config: Opt<Record<string, unknown>> = {};

  @Field(() => Boolean, { description: 'A disabled watcher should not run' })
  @Property({ type: 'boolean', default: true })
  isActive: Opt<boolean> = true;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  lastRunAt?: Date | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  lastSuccessAt?: Date | null;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  lastError?: string | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  lastErrorAt?: Date | null;

  @Field(() => Int)
  @Property({ type: 'integer', default: 0 })
  runCount: Opt<number> = 0;

  @Field(() => Int, { description: 'Failed runs, all time' })
  @Property({ type: 'integer', default: 0 })
  errorCount: Opt<number> = 0;

  @Field(() => Int, { description: 'Failed runs since the last successful one' })
  @Property({ type: 'integer', default: 0 })
  consecutiveErrors: Opt<number> = 0;

  @ManyToOne(() => User, { ref: true, nullable: true, deleteRule: 'set null' })
  createdBy?: Ref<User> | null;
}

/** One reported run of a watcher. */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'watcher_runs' })
@Index({ properties: ['watcher', 'createdAt'] })
export class WatcherRun extends BaseEntity {
  @ManyToOne(() => Watcher, { ref: true, deleteRule: 'cascade' })
  watcher!: Ref<Watcher>;

  @Field()
  @Property({ type: 'boolean' })
  ok!: boolean;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  error?: string | null;

  @Field(() => Int, { nullable: true })
  @Property({ type: 'integer', nullable: true })
  itemsProcessed?: number | null;

  @Field(() => Int, { nullable: true })
  @Property({ type: 'integer', nullable: true })
  durationMs?: number | null;

  @Field(() => GraphQLJSON, { nullable: true })
  @Property({ type: 'jsonb', nullable: true })
  details?: unknown;

  @Field(() => String, { nullable: true, description: 'The service actor that reported it' })
  @Property({ type: 'text', nullable: true })
  reportedBy?: string | null;
}
