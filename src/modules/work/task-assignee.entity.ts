import { Entity, Index, ManyToOne, Property, Unique, type Opt, type Ref } from '@mikro-orm/core';
import { BaseEntity } from '../../shared/base.entity.js';
import { User } from '../identity/user.entity.js';
import { Task } from './task.entity.js';

/** A user assigned to a task (user_tasks): who assigned, when, still active. Unique per task and user. */
@Entity({ tableName: 'task_assignees' })
@Unique({ properties: ['task', 'user'] })
@Index({ properties: ['user', 'active'] })
export class TaskAssignee extends BaseEntity {
  @ManyToOne(() => Task, { ref: true, deleteRule: 'cascade' })
  task!: Ref<Task>;

  @ManyToOne(() => User, { ref: true, deleteRule: 'cascade' })
  user!: Ref<User>;

  @ManyToOne(() => User, { ref: true, nullable: true, deleteRule: 'set null' })
  assignedBy?: Ref<User> | null;

  @Property({ type: 'timestamptz', defaultRaw: 'now()' })
  assignedAt: Opt<Date> = new Date();

  @Property({ type: 'boolean', default: true })
  active: Opt<boolean> = true;
}
