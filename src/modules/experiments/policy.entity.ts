import { Entity, ManyToOne, Property, Unique, type Opt, type Ref } from '@mikro-orm/core';
import { Field, ObjectType } from 'type-graphql';
import { BaseEntity, TimestampedEntity } from '../../shared/base.entity.js';
import { User } from '../identity/user.entity.js';
import { Project } from '../projects/project.entity.js';

/**
 * A named Rego policy. Steward stores the code; an OPA server (OPA_URL) that
 * has it loaded answers for `packagePath` (e.g. `steward.experiments`), queried as
 * POST /v1/data/steward/experiments. Attached to projects through project_policies.
 */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'policies' })
export class Policy extends TimestampedEntity {
  @Field()
  @Property({ type: 'text', unique: true })
  name!: string;

  @Field({ description: 'The Rego package the policy defines, dotted (steward.experiments)' })
  @Property({ type: 'text' })
  packagePath!: string;

  @Field()
  @Property({ type: 'text' })
  regoCode!: string;

  @Field(() => Boolean, { description: 'Switched off, it is not asked (and the evaluation says so)' })
  @Property({ type: 'boolean', default: true })
  active: Opt<boolean> = true;

  @ManyToOne(() => User, { ref: true, nullable: true, deleteRule: 'set null' })
  createdBy?: Ref<User> | null;
}

/** A policy attached to a project. */
@Entity({ tableName: 'project_policies' })
@Unique({ properties: ['project', 'policy'] })
export class ProjectPolicyLink extends BaseEntity {
  @ManyToOne(() => Project, { ref: true, deleteRule: 'cascade' })
  project!: Ref<Project>;

  @ManyToOne(() => Policy, { ref: true, deleteRule: 'cascade' })
  policy!: Ref<Policy>;

  /** An admin attached it: only an admin detaches it (a maintainer cannot drop a guard put on their project). */
  @Property({ type: 'boolean', default: false })
  attachedByAdmin: Opt<boolean> = false;
}
