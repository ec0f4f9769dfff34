/** A task was created or changed (status, fields, assignees, dependencies). */
export const TASK_UPDATED = 'work.taskUpdated';
/** A task was deleted. */
export const TASK_DELETED = 'work.taskDeleted';

export interface TaskEvent {
  taskId: string;
  projectId: string | null;
}
