import { Entity, Enum, Property, type Opt } from '@mikro-orm/core';
import { Field, ObjectType } from 'type-graphql';
import { TimestampedEntity } from '../../shared/base.entity.js';
import { AgentType } from './agent-type.js';

/** The six development agents and the general assistant, seeded; admins edit their prompts and models. */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'agents' })
export class Agent extends TimestampedEntity {
  @Field(() => AgentType)
  @Enum({ items: () => AgentType, nativeEnumName: 'agent_type', unique: true })
  type!: AgentType;

  @Field()
  @Property({ type: 'text' })
  name!: string;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  description?: string | null;

  @Field()
  @Property({ type: 'text' })
  systemPrompt!: string;

  @Field()
  @Property({ type: 'text' })
  defaultModel!: string;

  @Field(() => Boolean)
  @Property({ type: 'boolean', default: true })
  active: Opt<boolean> = true;
}

/** Tasks and projects name agents by type before the ai module's Agent rows exist. */
export { AgentType } from './agent-type.js';
