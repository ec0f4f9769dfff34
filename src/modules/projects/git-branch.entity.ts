import { Entity, ManyToOne, Property, Unique, type Opt, type Ref } from '@mikro-orm/core';
import { Field, ObjectType } from 'type-graphql';
import { BaseEntity } from '../../shared/base.entity.js';
import { AgentType } from '../ai/agent.entity.js';
import { Project } from './project.entity.js';

/** A git branch created for a project, usually by an agent; name unique per project. */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'git_branches' })
@Unique({ properties: ['project', 'name'] })
export class GitBranch extends BaseEntity {
  @ManyToOne(() => Project, { ref: true, deleteRule: 'cascade' })
  project!: Ref<Project>;

  @Field()
  @Property({ type: 'text' })
  name!: string;

  @Field(() => AgentType, { nullable: true })
  @Property({ type: 'text', nullable: true })
  createdByAgent?: AgentType | null;

  @Field(() => Boolean)
  @Property({ type: 'boolean', default: false })
  isMerged: Opt<boolean> = false;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  mergedAt?: Date | null;
}
