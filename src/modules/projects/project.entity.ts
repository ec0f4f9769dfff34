import { Entity, Enum, Index, ManyToOne, Property, type Opt, type Ref } from '@mikro-orm/core';
import { GraphQLJSONObject } from 'graphql-scalars';
import { Field, ObjectType, registerEnumType } from 'type-graphql';
import { TimestampedEntity } from '../../shared/base.entity.js';
import { User } from '../identity/user.entity.js';
import { ProjectTemplate } from './project-template.entity.js';

/** DELETED is a soft delete: the row stays for the audit trail, hidden from everyone but admins. */
export enum ProjectStatus {
  ACTIVE = 'ACTIVE',
  ARCHIVED = 'ARCHIVED',
  DELETED = 'DELETED',
}
registerEnumType(ProjectStatus, { name: 'ProjectStatus' });

/** A project: an owner, collaborators with roles, and the work inside it. */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'projects' })
@Index({ properties: ['owner', 'status'] })
export class Project extends TimestampedEntity {
  @Field()
  @Property({ type: 'text' })
  name!: string;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  description?: string | null;

  @ManyToOne(() => User, { ref: true, deleteRule: 'restrict' })
  owner!: Ref<User>;

  @Field(() => ProjectStatus)
  @Enum({ items: () => ProjectStatus, nativeEnumName: 'project_status', default: ProjectStatus.ACTIVE })
  status: Opt<ProjectStatus> = ProjectStatus.ACTIVE;

  @ManyToOne(() => ProjectTemplate, { ref: true, nullable: true, deleteRule: 'set null' })
  template?: Ref<ProjectTemplate> | null;

  @Field(() => GraphQLJSONObject)
  @Property({ type: 'jsonb', default: '{}' })
  settings: Opt<Record<string, unknown>> = {};

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  gitRepoUrl?: string | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  lastAccessedAt?: Date | null;
}
