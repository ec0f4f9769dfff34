import { Entity, Enum, Index, ManyToOne, Unique, type Ref } from '@mikro-orm/core';
import { Field, ObjectType, registerEnumType } from 'type-graphql';
import { BaseEntity } from '../../shared/base.entity.js';
import { User } from '../identity/user.entity.js';
import { Project } from './project.entity.js';

/**
 * OWNER > MAINTAINER > CONTRIBUTOR > VIEWER. The owner is a member row too (one source
 * for every membership check), kept in step with Project.owner on transfer.
 */
export enum ProjectRole {
  OWNER = 'OWNER',
  MAINTAINER = 'MAINTAINER',
  CONTRIBUTOR = 'CONTRIBUTOR',
  VIEWER = 'VIEWER',
}
registerEnumType(ProjectRole, { name: 'ProjectRole' });

@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'project_members' })
@Unique({ properties: ['project', 'user'] })
@Index({ properties: ['user'] })
export class ProjectMember extends BaseEntity {
  @ManyToOne(() => Project, { ref: true, deleteRule: 'cascade' })
  project!: Ref<Project>;

  @ManyToOne(() => User, { ref: true, deleteRule: 'cascade' })
  user!: Ref<User>;

  @Field(() => ProjectRole)
  @Enum({ items: () => ProjectRole, nativeEnumName: 'project_role' })
  role!: ProjectRole;

  @ManyToOne(() => User, { ref: true, nullable: true, deleteRule: 'set null' })
  addedBy?: Ref<User> | null;
}
