import type { Config } from '../../config.js';
import type { SqlClient } from '../../db/sql.js';
import type { EventBus } from '../../events/bus.js';
import type { JobDefinition } from '../../jobs/scheduler.js';
import type { Route } from '../../server/http.js';
import type { Envelope } from '../../shared/crypto.js';
import type { Logger } from '../../shared/logger.js';
import type { Mailer } from '../../shared/mailer.js';
import type { AuditService } from '../audit/audit.service.js';
import type { ProjectService } from '../projects/project.service.js';
import type { UserService } from '../identity/user.service.js';
import { Approval } from './approval.entity.js';
import { FileAttachment } from './file-attachment.entity.js';
import { Notification } from './notification.entity.js';
import { DELIVERY_JOB } from './notification.delivery.js';
import { NotificationResolver } from './notification.resolver.js';
import { NotificationService } from './notification.service.js';
import { TaskAssignee } from './task-assignee.entity.js';
import { TaskDependency } from './task-dependency.entity.js';
import { Task } from './task.entity.js';
import { TaskPolicy } from './task.policy.js';
import { ApprovalResolver } from './approval.resolver.js';
import { AttachmentResolver, TaskAttachmentsResolver } from './attachment.resolver.js';
import { attachmentRoutes } from './attachment.routes.js';
import { AttachmentService, removeExpiredAttachmentsJob } from './attachment.service.js';
import { ApprovalService } from './approval.service.js';
import { ProjectTasksResolver, TaskResolver } from './task.resolver.js';
import { TaskService } from './task.service.js';
import { NotificationPreference } from './notification-preference.entity.js';
import { NotificationPreferenceResolver } from './notification-preference.resolver.js';
import { NotificationPreferenceService } from './notification-preference.service.js';
import { Webhook } from './webhook.entity.js';
import { WebhookResolver } from './webhook.resolver.js';
import { WebhookService } from './webhook.service.js';

export const workEntities = [Task, TaskDependency, TaskAssignee, Approval, Notification, FileAttachment, NotificationPreference, Webhook];

/** The module's GraphQL resolvers (tasks, approvals, notifications, attachments). */
export const workResolvers = [TaskResolver, ProjectTasksResolver, ApprovalResolver, AttachmentResolver, TaskAttachmentsResolver, NotificationResolver, NotificationPreferenceResolver, WebhookResolver] as const;

export interface WorkDeps {
  config: Config;
  db: SqlClient;
  bus: EventBus;
  audit: AuditService;
  mailer: Mailer;
  envelope: Envelope;
  logger: Logger;
  projects: ProjectService;
  users: Pick<UserService, 'activeAdminIds'>;
}

export function createWork(d: WorkDeps) {
  const taskPolicy = new TaskPolicy(d.db, d.projects.policy);
  const notificationPreferences = new NotificationPreferenceService(d);
  const webhooks = new WebhookService(d);
  const notifications = new NotificationService({ ...d, preferences: notificationPreferences, webhooks });
  const tasks = new TaskService({ ...d, policy: taskPolicy, notifications });
  const approvals = new ApprovalService({ ...d, tasks: taskPolicy, notifications });
  const attachments = new AttachmentService({ ...d, taskPolicy });
  return { taskPolicy, notifications, notificationPreferences, webhooks, tasks, approvals, attachments };
}

export type WorkServices = ReturnType<typeof createWork>;

/** Scheduled work of the module (approval expiry, notification delivery, overdue tasks, expired attachments). */
export function workJobs(s: WorkServices, d: WorkDeps): JobDefinition[] {
  return [
    // Approvals expire "on time": checked every tick, once across instances (the job's lease).
    { name: 'work.expireApprovals', intervalMs: d.config.JOB_TICK_MS, run: ({ em }) => s.approvals.expireDue(em) },
    { name: 'work.notifyOverdueTasks', intervalMs: 60_000, run: ({ em }) => s.tasks.notifyOverdue(em) },
    removeExpiredAttachmentsJob(s.attachments),
    { name: DELIVERY_JOB, intervalMs: d.config.JOB_TICK_MS, run: ({ em }) => s.notifications.deliverDue(em) },
  ];
}

/** Plain HTTP endpoints of the module (attachment upload and download). */
export function workRoutes(s: WorkServices): Route[] {
  return [...attachmentRoutes(s.attachments)];
}
