import { Entity, Property, type Opt } from '@mikro-orm/core';
import { Field, ID, ObjectType } from 'type-graphql';

import { TimestampedEntity } from '../../shared/base.entity.js';
import { Role, Tier } from '../identity/user.entity.js';

/**
 * Who may use which models: a rule names a model (exactly, or a pattern with `*`) and
 * the callers it admits — by tier, role and/or project, all given conditions together.
 * A model no rule names is open to every user who can reach a provider of it; a model
 * that rules name is usable only by a caller matching at least one of them.
 */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'model_access_rules' })
export class ModelAccessRule extends TimestampedEntity {
  @Field({ description: 'A model name as providers serve it, or a pattern where * stands for any text (claude-*)' })
  @Property({ type: 'text' })
  model!: string;

  @Field(() => [Tier], { description: 'Caller tiers admitted; empty: any tier' })
  @Property({ type: 'text[]', default: '{}' })
  tiers: Opt<Tier[]> = [];

  @Field(() => [Role], { description: 'Caller roles admitted; empty: any role' })
  @Property({ type: 'text[]', default: '{}' })
  roles: Opt<Role[]> = [];

  @Field(() => ID, { nullable: true, description: 'Calls attributed to this project only; null: any call' })
  @Property({ type: 'uuid', nullable: true })
  projectId?: string | null;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  note?: string | null;

  @Property({ type: 'uuid', nullable: true })
  createdById?: string | null;
}
