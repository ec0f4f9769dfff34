import { Entity, Index, ManyToOne, PrimaryKeyProp, Property, type Opt, type Ref } from '@mikro-orm/core';
import { Task } from './task.entity.js';

/** `task` cannot start before `dependsOn` is COMPLETED. No cycles (checked by the service). */
@Entity({ tableName: 'task_dependencies' })
@Index({ properties: ['dependsOn'] })
export class TaskDependency {
  [PrimaryKeyProp]?: ['task', 'dependsOn'];

  @ManyToOne(() => Task, { ref: true, primary: true, deleteRule: 'cascade' })
  task!: Ref<Task>;

  @ManyToOne(() => Task, { ref: true, primary: true, deleteRule: 'cascade' })
  dependsOn!: Ref<Task>;

  @Property({ type: 'timestamptz', defaultRaw: 'now()' })
  createdAt: Opt<Date> = new Date();
}
