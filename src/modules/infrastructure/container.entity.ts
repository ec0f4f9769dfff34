import { Check, Entity, Enum, Index, ManyToOne, Property, Unique, type Opt, type Ref } from '@mikro-orm/core';
import { Field, Float, Int, ObjectType, registerEnumType } from 'type-graphql';
import { TimestampedEntity } from '../../shared/base.entity.js';
import { User } from '../identity/user.entity.js';
import { Project } from '../projects/project.entity.js';

/**
 * A dev container's lifecycle (plus ERROR for a runtime that failed). Valid
 * moves are in ./container.rules.ts; any other is refused with BAD_USER_INPUT.
 */
export enum ContainerStatus {
  CREATING = 'CREATING',
  RUNNING = 'RUNNING',
  SLEEPING = 'SLEEPING',
  STOPPED = 'STOPPED',
  ERROR = 'ERROR',
}
registerEnumType(ContainerStatus, { name: 'ContainerStatus' });

/**
 * A project's development container. The runtime that runs it (Docker,
 * OrbStack, Kubernetes) is outside Steward: it reports `status` and activity with a
 * service token; members ask for start, stop or sleep, which Steward records as
 * `desiredStatus` for the runtime to act on (it is cleared when the runtime reports
 * that status). Idle RUNNING containers are put to SLEEPING by a job.
 */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'containers' })
@Unique({ properties: ['project', 'name'] })
@Index({ properties: ['project', 'status'] })
@Index({
  name: 'containers_running_idle_index',
  expression: `create index "containers_running_idle_index" on "containers" ("last_active_at") where "status" = 'RUNNING'`,
})
@Check({ name: 'containers_cpu_limit_check', expression: '"cpu_limit" > (0)::double precision' })
@Check({ name: 'containers_memory_limit_check', expression: '"memory_limit_mb" > 0' })
export class Container extends TimestampedEntity {
  @ManyToOne(() => Project, { ref: true, deleteRule: 'cascade' })
  project!: Ref<Project>;

  @Field({ description: 'Unique in the project' })
  @Property({ type: 'text' })
  name!: string;

  @Field(() => String, { nullable: true, description: "The image the runtime starts, e.g. the template's" })
  @Property({ type: 'text', nullable: true })
  image?: string | null;

  @Field(() => String, {
    nullable: true,
    description: "The runtime's own id for it (Docker/OrbStack container id), as reported",
  })
  @Property({ type: 'text', nullable: true })
  runtimeId?: string | null;

  @Field(() => ContainerStatus, { description: 'As last reported by the runtime (or set by the idle job)' })
  @Enum({ items: () => ContainerStatus, nativeEnumName: 'container_status', default: ContainerStatus.CREATING })
  status: Opt<ContainerStatus> = ContainerStatus.CREATING;

  @Field(() => ContainerStatus, {
    nullable: true,
    description: 'What members asked for and the runtime has not reported yet',
  })
  @Enum({ items: () => ContainerStatus, nativeEnumName: 'container_status', nullable: true })
  desiredStatus?: ContainerStatus | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  desiredAt?: Date | null;

  @ManyToOne(() => User, { ref: true, nullable: true, deleteRule: 'set null' })
  desiredBy?: Ref<User> | null;

  @Field(() => Float, { description: 'CPU cores' })
  @Property({ type: 'double' })
  cpuLimit!: number;

  @Field(() => Int, { description: 'Memory in MiB' })
  @Property({ type: 'integer' })
  memoryLimitMb!: number;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  previewUrl?: string | null;

  @Field(() => Date, { nullable: true, description: 'Last activity the runtime reported' })
  @Property({ type: 'timestamptz', nullable: true })
  lastActiveAt?: Date | null;

  @Field(() => Date)
  @Property({ type: 'timestamptz', defaultRaw: 'now()' })
  statusChangedAt: Opt<Date> = new Date();

  @Field(() => String, { nullable: true, description: 'What the runtime said with its last report (an error, say)' })
  @Property({ type: 'text', nullable: true })
  statusMessage?: string | null;

  @ManyToOne(() => User, { ref: true, nullable: true, deleteRule: 'set null' })
  createdBy?: Ref<User> | null;
}
