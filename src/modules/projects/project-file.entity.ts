import { BigIntType, Entity, ManyToOne, Property, Unique, type Ref } from '@mikro-orm/core';
import { Field, Float, ObjectType } from 'type-graphql';
import { TimestampedEntity } from '../../shared/base.entity.js';
import { AgentType } from '../ai/agent.entity.js';
import { User } from '../identity/user.entity.js';
import { Project } from './project.entity.js';

/** A file of a project's tree as agents report it: path unique per project. */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'project_files' })
@Unique({ properties: ['project', 'path'] })
export class ProjectFile extends TimestampedEntity {
  @ManyToOne(() => Project, { ref: true, deleteRule: 'cascade' })
  project!: Ref<Project>;

  @Field()
  @Property({ type: 'text' })
  path!: string;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  fileType?: string | null;

  // MikroORM maps a bare 'bigint' to a JS bigint, which GraphQL's Float cannot serialise:
  // read it as a number (sizes stay below Number.MAX_SAFE_INTEGER, as the input enforces).
  @Field(() => Float, { nullable: true, description: 'Bytes' })
  @Property({ type: new BigIntType('number'), nullable: true })
  sizeBytes?: number | null;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  sha256?: string | null;

  @Field(() => AgentType, { nullable: true })
  @Property({ type: 'text', nullable: true })
  createdByAgent?: AgentType | null;

  @ManyToOne(() => User, { ref: true, nullable: true, deleteRule: 'set null' })
  createdBy?: Ref<User> | null;
}
