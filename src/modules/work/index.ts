import { Approval } from './approval.entity.js';
import type { ApprovalService } from './approval.service.js';
import type { AttachmentService } from './attachment.service.js';
import { FileAttachment } from './file-attachment.entity.js';
import { NotificationPreference } from './notification-preference.entity.js';
import type { NotificationPreferenceService } from './notification-preference.service.js';
import { Notification } from './notification.entity.js';
import type { NotificationService } from './notification.service.js';
import { TaskAssignee } from './task-assignee.entity.js';
import { TaskDependency } from './task-dependency.entity.js';
import { Task } from './task.entity.js';
import type { TaskPolicy } from './task.policy.js';
import type { TaskService } from './task.service.js';
import { Webhook } from './webhook.entity.js';
import type { WebhookService } from './webhook.service.js';

/** The work module's surface: what other modules and src/db/entities.ts may import. */
export const workEntities = [
  Task,
  TaskDependency,
  TaskAssignee,
  Approval,
  Notification,
  FileAttachment,
  NotificationPreference,
  Webhook,
];

export interface WorkServices {
  taskPolicy: TaskPolicy;
  notifications: NotificationService;
  notificationPreferences: NotificationPreferenceService;
  webhooks: WebhookService;
  tasks: TaskService;
  approvals: ApprovalService;
  attachments: AttachmentService;
}

export type { ApprovalRow, ApprovalService } from './approval.service.js';
export type { NotificationService } from './notification.service.js';
export type { TaskPolicy } from './task.policy.js';
export { APPROVAL_DECIDED, type ApprovalEvent } from './approval.events.js';
export { TASK_DELETED, TASK_UPDATED, type TaskEvent } from './task.events.js';
