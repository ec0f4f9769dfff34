import { Entity, Index, ManyToOne, Property, type Opt, type Ref } from '@mikro-orm/core';
import { GraphQLJSONObject } from 'graphql-scalars';
import { Field, ObjectType } from 'type-graphql';
import { TimestampedEntity } from '../../shared/base.entity.js';
import { Provider } from '../billing/provider.entity.js';
import { User } from '../identity/user.entity.js';
import { Project } from '../projects/project.entity.js';
import { Task } from '../work/task.entity.js';
import { Agent } from './agent.entity.js';

/** A conversation of a user with an agent, optionally about a project and a task. */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'conversations' })
@Index({ properties: ['user', 'updatedAt'] })
export class Conversation extends TimestampedEntity {
  @ManyToOne(() => User, { ref: true, deleteRule: 'cascade' })
  user!: Ref<User>;

  @ManyToOne(() => Agent, { ref: true, deleteRule: 'restrict' })
  agent!: Ref<Agent>;

  @ManyToOne(() => Project, { ref: true, nullable: true, deleteRule: 'set null' })
  project?: Ref<Project> | null;

  /** The task whose allowed intents govern the prompts. */
  @ManyToOne(() => Task, { ref: true, nullable: true, deleteRule: 'set null' })
  task?: Ref<Task> | null;

  /** The provider asked for; none: the platform's default choice. */
  @ManyToOne(() => Provider, { ref: true, nullable: true, deleteRule: 'set null' })
  provider?: Ref<Provider> | null;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  title?: string | null;

  @Field(() => GraphQLJSONObject)
  @Property({ type: 'jsonb', default: '{}' })
  context: Opt<Record<string, unknown>> = {};

  @Field(() => Boolean)
  @Property({ type: 'boolean', default: true })
  active: Opt<boolean> = true;
}
