import { Entity, Property, type Opt } from '@mikro-orm/core';
import { GraphQLJSONObject } from 'graphql-scalars';
import { Field, ObjectType } from 'type-graphql';
import { BaseEntity } from '../../shared/base.entity.js';

/** The four built-in templates; creating a project from one copies its default settings. */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'project_templates' })
export class ProjectTemplate extends BaseEntity {
  @Field()
  @Property({ type: 'text', unique: true })
  key!: string;

  @Field()
  @Property({ type: 'text' })
  name!: string;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  description?: string | null;

  @Field(() => GraphQLJSONObject)
  @Property({ type: 'jsonb', default: '{}' })
  defaults: Opt<Record<string, unknown>> = {};
}
