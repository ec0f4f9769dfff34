import type { AuditService } from '../audit/index.js';
import { defineModule, type ModuleDeps } from '../define-module.js';
import type { UserService } from '../identity/index.js';
import type { ProjectService } from '../projects/index.js';
import { ApprovalResolver } from './approval.resolver.js';
import { ApprovalService } from './approval.service.js';
import { AttachmentResolver, TaskAttachmentsResolver } from './attachment.resolver.js';
import { attachmentRoutes } from './attachment.routes.js';
import { AttachmentService, removeExpiredAttachmentsJob } from './attachment.service.js';
import { workEntities, type WorkServices } from './index.js';
import { NotificationPreferenceResolver } from './notification-preference.resolver.js';
import { NotificationPreferenceService } from './notification-preference.service.js';
import { DELIVERY_JOB } from './notification.delivery.js';
import { NotificationResolver } from './notification.resolver.js';
import { NotificationService } from './notification.service.js';
import { TaskPolicy } from './task.policy.js';
import { ProjectTasksResolver, TaskResolver } from './task.resolver.js';
import { TaskService } from './task.service.js';
import { WebhookResolver } from './webhook.resolver.js';
import { WebhookService } from './webhook.service.js';

/** Tasks, approvals, notifications and attachments. */
export const workModule = defineModule({
  name: 'work',
  entities: workEntities,
  resolvers: [
    TaskResolver,
    ProjectTasksResolver,
    ApprovalResolver,
    AttachmentResolver,
    TaskAttachmentsResolver,
    NotificationResolver,
    NotificationPreferenceResolver,
    WebhookResolver,
  ],
  create(
    deps: ModuleDeps<{ audit: AuditService; projects: ProjectService; users: Pick<UserService, 'activeAdminIds'> }>,
  ): WorkServices {
    const taskPolicy = new TaskPolicy(deps.db, deps.projects.policy);
    const notificationPreferences = new NotificationPreferenceService(deps);
    const webhooks = new WebhookService(deps);
    const notifications = new NotificationService({ ...deps, preferences: notificationPreferences, webhooks });
    const tasks = new TaskService({ ...deps, policy: taskPolicy, notifications });
    const approvals = new ApprovalService({ ...deps, tasks: taskPolicy, notifications });
    const attachments = new AttachmentService({ ...deps, taskPolicy });
    return { taskPolicy, notifications, notificationPreferences, webhooks, tasks, approvals, attachments };
  },
  jobs: (services, { config }) => [
    // Approvals expire "on time": checked every tick, once across instances (the job's lease).
    { name: 'work.expireApprovals', intervalMs: config.JOB_TICK_MS, run: ({ em }) => services.approvals.expireDue(em) },
    { name: 'work.notifyOverdueTasks', intervalMs: 60_000, run: ({ em }) => services.tasks.notifyOverdue(em) },
    removeExpiredAttachmentsJob(services.attachments),
    { name: DELIVERY_JOB, intervalMs: config.JOB_TICK_MS, run: ({ em }) => services.notifications.deliverDue(em) },
  ],
  /** Attachment upload and download. */
  routes: (services) => attachmentRoutes(services.attachments),
});
