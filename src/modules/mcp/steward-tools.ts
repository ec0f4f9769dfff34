import { parse } from 'graphql';
import sql from 'sql-template-tag';
import { z } from 'zod';

import type { Runtime } from '../../server/context.js';
import { inTransaction, type RequestMeta, type Viewer } from '../../shared/scope.js';
import { APPROVAL_DECIDED, type ApprovalEvent } from '../work/index.js';
import { NotificationPriority, NotificationType } from '../work/notification.entity.js';
import { assertMayNotify } from './access.js';
import { ToolError, type GraphQLBridge } from './graphql-bridge.js';

/** The longest `get_approval` holds a call open waiting for a decision. */
export const MAX_WAIT_SECONDS = 300;
/** How often a waiting `get_approval` reports progress (when the caller asked for it). */
const PROGRESS_EVERY_MS = 1000;

export interface ToolCall {
  viewer: Viewer;
  meta: RequestMeta;
  signal: AbortSignal;
  /** Sends `notifications/progress` when the caller gave a progress token; otherwise does nothing. */
  progress(progress: number, total?: number, message?: string): Promise<void>;
}

export interface StewardTool {
  name: string;
  title: string;
  description: string;
  input: z.ZodObject;
  output: z.ZodObject;
  readOnly: boolean;
  run(args: any, call: ToolCall): Promise<Record<string, unknown>>;
}

const uuid = () => z.uuid();
const TASK_STATUS = z.enum(['PENDING', 'ASSIGNED', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED']);
const APPROVAL_STATUS = z.enum(['PENDING', 'APPROVED', 'REJECTED', 'EXPIRED']);
const iso = (d: unknown) => (d == null ? null : new Date(d as string).toISOString());

const REQUEST_APPROVAL = parse(`mutation McpRequestApproval($input: RequestApprovalInput!) {
  requestApproval(input: $input) { id status expiresAt }
}`);
const LIST_TASKS = parse(`query McpListTasks($first: Int, $where: TaskWhere) {
  tasks(first: $first, where: $where) { totalCount edges { node { id title status priority dueDate project { id name } } } }
}`);
const UPDATE_TASK_STATUS = parse(`mutation McpUpdateTaskStatus($input: UpdateTaskStatusInput!) {
  updateTaskStatus(input: $input) { id title status }
}`);
const SEARCH_KNOWLEDGE = parse(`query McpSearchKnowledge($query: String!, $first: Int!) {
  searchKnowledge(query: $query, first: $first) { rank entry { id title content category } }
}`);

interface ApprovalState {
  id: string;
  status: z.infer<typeof APPROVAL_STATUS>;
  decided_by_id: string | null;
  notes: string | null;
  decided_at: Date | null;
  expires_at: Date | null;
  expired: boolean;
}

async function approvalState(runtime: Runtime, viewer: Viewer, approvalId: string): Promise<ApprovalState> {
  const row = await runtime.db.one<ApprovalState>(sql`
    SELECT t.id, t.status, t.decided_by_id, t.notes, t.decided_at, t.expires_at,
           (t.status = 'PENDING' AND t.expires_at <= now()) AS expired
      FROM approvals t WHERE t.id = ${approvalId}::uuid AND ${runtime.services.approvals.visible(viewer)}`);
  if (!row) throw new ToolError('NOT_FOUND', `Approval ${approvalId} not found`);
  return row;
}

const approvalAnswer = (a: ApprovalState) => ({
  approvalId: a.id,
  // Past its expiry a PENDING approval can no longer be decided: it is EXPIRED, whether or not the expiry job has run yet.
  status: a.expired ? 'EXPIRED' : a.status,
  decidedBy: a.decided_by_id,
  notes: a.notes,
  decidedAt: iso(a.decided_at),
  expiresAt: iso(a.expires_at),
});

/** Resolves on the approval's decision, after `ms`, or when the caller goes away, whichever comes first. */
function decisionOrTimeout(runtime: Runtime, call: ToolCall, approvalId: string, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      off();
      call.signal.removeEventListener('abort', done);
      resolve();
    };
    const off = runtime.bus.on(APPROVAL_DECIDED, (e) => {
      if ((e as ApprovalEvent).approvalId === approvalId) done();
    });
    const timer = setTimeout(done, ms);
    call.signal.addEventListener('abort', done);
  });
}

/** Until the approval is decided or expired, `seconds` pass, or the caller goes away. */
async function waitForDecision(
  runtime: Runtime,
  call: ToolCall,
  current: ApprovalState,
  seconds: number,
): Promise<ApprovalState> {
  const started = Date.now();
  const until = Math.min(started + seconds * 1000, current.expires_at ? current.expires_at.getTime() + 50 : Infinity);
  let state = current;
  while (state.status === 'PENDING' && !state.expired && Date.now() < until && !call.signal.aborted) {
    await decisionOrTimeout(runtime, call, current.id, Math.max(0, Math.min(PROGRESS_EVERY_MS, until - Date.now())));
    state = await approvalState(runtime, call.viewer, current.id);
    if (state.status === 'PENDING' && !state.expired)
      await call.progress(Math.round((Date.now() - started) / 1000), seconds, 'waiting for a decision');
  }
  return state;
}

/** `request_approval`: the `requestApproval` mutation. */
function requestApprovalTool(graphql: GraphQLBridge): StewardTool {
  return {
    name: 'request_approval',
    title: 'Ask a human to approve an action',
    description:
      "Creates a PENDING approval for an action of a task or project; its deciders (the project's owner and maintainers, or admins) are notified at once. " +
      'Poll or wait for the decision with get_approval.',
    readOnly: false,
    input: z.object({
      actionType: z.string().min(1).max(100).describe('What is to be done, e.g. "deploy", "merge", "send_email"'),
      details: z.record(z.string(), z.unknown()).optional().describe('Anything the deciders need to judge it'),
      taskId: uuid().optional().describe('The task the action belongs to (its project is implied)'),
      projectId: uuid().optional().describe('Or the project, for a project-wide action'),
      expiresInMinutes: z
        .number()
        .int()
        .min(1)
        .max(525_600)
        .optional()
        .describe("Default: the organisation's approval lifetime"),
    }),
    output: z.object({ approvalId: z.string(), status: APPROVAL_STATUS, expiresAt: z.string().nullable() }),
    async run(args, call) {
      const input = {
        actionType: args.actionType,
        details: args.details ?? null,
        taskId: args.taskId ?? null,
        projectId: args.projectId ?? null,
        expiresAt: args.expiresInMinutes ? new Date(Date.now() + args.expiresInMinutes * 60_000).toISOString() : null,
      };
      const { requestApproval: a } = await graphql.run<{
        requestApproval: { id: string; status: string; expiresAt: string | null };
      }>(REQUEST_APPROVAL, { input }, call.viewer, call.meta);
      return { approvalId: a.id, status: a.status, expiresAt: iso(a.expiresAt) };
    },
  };
}

/** `get_approval`: read with the approvals' own visibility rule, so that the agent that asked can learn the answer. */
function getApprovalTool(runtime: Runtime): StewardTool {
  return {
    name: 'get_approval',
    title: "Read (or wait for) an approval's decision",
    description:
      `The approval's status and decision. With wait (seconds, at most ${MAX_WAIT_SECONDS}) the call is held until it is decided or expires, ` +
      'sending MCP progress notifications every second while it waits if the request carries a progress token.',
    readOnly: true,
    input: z.object({
      approvalId: uuid(),
      wait: z
        .number()
        .int()
        .min(0)
        .max(MAX_WAIT_SECONDS)
        .optional()
        .describe('Seconds to wait for a decision (default 0: answer at once)'),
    }),
    output: z.object({
      approvalId: z.string(),
      status: APPROVAL_STATUS,
      decidedBy: z.string().nullable().describe("The deciding user's id"),
      notes: z.string().nullable(),
      decidedAt: z.string().nullable(),
      expiresAt: z.string().nullable(),
    }),
    async run(args, call) {
      let state = await approvalState(runtime, call.viewer, args.approvalId.toLowerCase());
      if (args.wait) state = await waitForDecision(runtime, call, state, args.wait);
      return approvalAnswer(state);
    },
  };
}

/** `list_tasks`: the `tasks` query. */
function listTasksTool(graphql: GraphQLBridge): StewardTool {
  return {
    name: 'list_tasks',
    title: 'List tasks',
    description: 'Tasks you may see, newest first, optionally of one project and in some statuses.',
    readOnly: true,
    input: z.object({
      status: z.union([TASK_STATUS, z.array(TASK_STATUS).max(6)]).optional(),
      projectId: uuid().optional(),
      first: z.number().int().min(1).max(100).optional().describe('Default 20'),
    }),
    output: z.object({
      totalCount: z.number().int(),
      tasks: z.array(
        z.object({
          id: z.string(),
          title: z.string(),
          status: TASK_STATUS,
          priority: z.string(),
          dueDate: z.string().nullable(),
          projectId: z.string().nullable(),
          projectName: z.string().nullable(),
        }),
      ),
    }),
    async run(args, call) {
      const status = args.status == null ? null : Array.isArray(args.status) ? args.status : [args.status];
      const where = { projectId: args.projectId ?? null, status };
      type Node = {
        id: string;
        title: string;
        status: string;
        priority: string;
        dueDate: string | null;
        project: { id: string; name: string } | null;
      };
      const { tasks } = await graphql.run<{ tasks: { totalCount: number; edges: { node: Node }[] } }>(
        LIST_TASKS,
        { first: args.first ?? 20, where },
        call.viewer,
        call.meta,
      );
      return {
        totalCount: tasks.totalCount,
        tasks: tasks.edges.map(({ node: t }) => ({
          id: t.id,
          title: t.title,
          status: t.status,
          priority: t.priority,
          dueDate: iso(t.dueDate),
          projectId: t.project?.id ?? null,
          projectName: t.project?.name ?? null,
        })),
      };
    },
  };
}

/** `update_task_status`: the `updateTaskStatus` mutation. */
function updateTaskStatusTool(graphql: GraphQLBridge): StewardTool {
  return {
    name: 'update_task_status',
    title: 'Move a task to another status',
    description:
      'PENDING → ASSIGNED → IN_PROGRESS → COMPLETED | FAILED; an open task → CANCELLED. Starts only when its dependencies are COMPLETED.',
    readOnly: false,
    input: z.object({ taskId: uuid(), status: TASK_STATUS }),
    output: z.object({ taskId: z.string(), title: z.string(), status: TASK_STATUS }),
    async run(args, call) {
      const { updateTaskStatus: t } = await graphql.run<{
        updateTaskStatus: { id: string; title: string; status: string };
      }>(UPDATE_TASK_STATUS, { input: { taskId: args.taskId, status: args.status } }, call.viewer, call.meta);
      return { taskId: t.id, title: t.title, status: t.status };
    },
  };
}

/** `search_knowledge`: the `searchKnowledge` query. */
function searchKnowledgeTool(graphql: GraphQLBridge): StewardTool {
  return {
    name: 'search_knowledge',
    title: 'Search the knowledge base',
    description:
      'Full-text search of the organisation\'s knowledge base (web search syntax: "quoted phrase", -not, or), best first.',
    readOnly: true,
    input: z.object({
      query: z.string().min(1).max(500),
      first: z.number().int().min(1).max(50).optional().describe('Default 10'),
    }),
    output: z.object({
      results: z.array(
        z.object({
          id: z.string(),
          title: z.string(),
          content: z.string(),
          category: z.string().nullable(),
          rank: z.number(),
        }),
      ),
    }),
    async run(args, call) {
      type Hit = { rank: number; entry: { id: string; title: string; content: string; category: string | null } };
      const { searchKnowledge } = await graphql.run<{ searchKnowledge: Hit[] }>(
        SEARCH_KNOWLEDGE,
        { query: args.query, first: args.first ?? 10 },
        call.viewer,
        call.meta,
      );
      return { results: searchKnowledge.map((h) => ({ ...h.entry, rank: h.rank })) };
    },
  };
}

/** `notify`: into the caller's own inbox through NotificationService, audited like `sendNotification`. */
function notifyTool(runtime: Runtime): StewardTool {
  return {
    name: 'notify',
    title: "Notify the token's user",
    description:
      'Puts a notification in the inbox of the user the token belongs to (delivered live to their open dashboards).',
    readOnly: false,
    input: z.object({ title: z.string().min(1).max(200), message: z.string().max(5000).optional() }),
    output: z.object({ notificationId: z.string(), userId: z.string() }),
    async run(args, call) {
      assertMayNotify(call.viewer);
      const scope = { em: runtime.orm.em.fork(), viewer: call.viewer, meta: call.meta };
      const [n] = await inTransaction(scope as never, async (tx) => {
        const created = await runtime.services.notifications.notify(tx, {
          userId: call.viewer.userId,
          title: args.title,
          message: args.message ?? (call.viewer.serviceActor ? `From ${call.viewer.serviceActor}` : null),
          type: NotificationType.INFO,
          priority: NotificationPriority.NORMAL,
          data: { via: 'mcp', ...(call.viewer.serviceActor ? { serviceActor: call.viewer.serviceActor } : {}) },
        });
        for (const c of created) {
          runtime.services.audit.record(tx, {
            action: 'notification.send',
            entityType: 'Notification',
            entityId: c.id,
            after: {
              userId: call.viewer.userId,
              title: c.title,
              type: c.type,
              priority: c.priority,
              channel: c.channel,
              via: 'mcp',
            },
          });
        }
        return created;
      });
      return { notificationId: n!.id, userId: call.viewer.userId };
    },
  };
}

/**
 * Steward's own MCP tools. Each is its GraphQL operation run in-process (see
 * GraphQLBridge), except where no operation fits the caller: `get_approval` reads with
 * the approvals' own visibility rule (ApprovalService.visible) so that the agent whose
 * service token asked can learn the answer, and `notify` writes to the caller's own inbox
 * through NotificationService, audited like `sendNotification`.
 */
export function stewardTools(runtime: Runtime, graphql: GraphQLBridge): StewardTool[] {
  return [
    requestApprovalTool(graphql),
    getApprovalTool(runtime),
    listTasksTool(graphql),
    updateTaskStatusTool(graphql),
    searchKnowledgeTool(graphql),
    notifyTool(runtime),
  ];
}
