import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import sql from 'sql-template-tag';

import type { SqlClient } from '../../db/sql.js';
import { NEWEST_FIRST, paginate, type PageArgs } from '../../shared/connection.js';
import { sha256 } from '../../shared/crypto.js';
import {
  AppError,
  BadInputError,
  ConflictError,
  ForbiddenError,
  NotFoundError,
  requireUuid,
} from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { and, readModel } from '../../shared/read-model.js';
import { inTransaction, type Scope, type Viewer } from '../../shared/scope.js';
import { canonicalize, type AuditService } from '../audit/index.js';
import { Role } from '../identity/user.entity.js';
import { McpServer } from '../infrastructure/mcp-server.entity.js';
import type { ProjectService } from '../projects/index.js';
import { ProjectRole } from '../projects/project-member.entity.js';
import { Approval, ApprovalStatus } from '../work/approval.entity.js';
import type { ApprovalService } from '../work/index.js';
import { assertMcpAccess } from './access.js';
import { withoutNul, type McpRegistryService } from './mcp-registry.service.js';
import { McpToolCall, McpToolCallStatus } from './mcp-tool-call.entity.js';
import { McpToolGrant } from './mcp-tool-grant.entity.js';
import { callRemoteTool, describeFailure } from './remote-client.js';

/** The action type of approvals that gate a tool call (their details name the server and tool). */
export const TOOL_CALL_ACTION = 'mcp.tool_call';
/** Largest result kept for a retry that arrives while the call runs (bigger ones are kept as a note). */
const MAX_KEPT_RESULT_BYTES = 512 * 1024;
/** How long a retry waits for the same call running elsewhere. */
const WAIT_FOR_RUNNING_MS = 130_000;
const INTERRUPTED =
  'Interrupted: the instance running this call stopped before it finished; it is not run again (the server may have done it)';

export interface McpToolCallDeps {
  db: SqlClient;
  logger: Logger;
  audit: AuditService;
  projects: ProjectService;
  approvals: ApprovalService;
  registry: McpRegistryService;
}

export interface CallInput {
  serverId: string;
  tool: string;
  arguments?: Record<string, unknown> | null;
  projectId?: string | null;
}

export interface ToolCallOutcome {
  call: McpToolCall;
  /** Set while the call waits for its approval (and when that was refused). */
  approval: Approval | null;
  content: CallToolResult['content'] | null;
  structuredContent: Record<string, unknown> | null;
  isError: boolean;
}

export interface GrantInput {
  projectId: string;
  serverId: string;
  tool?: string | null;
  needsApproval?: boolean | null;
}

/** What of the caller identifies "the same caller" across retries. */
const callerKey = (v: Viewer) => ({ callerId: v.userId, callerActor: v.serviceActor ?? null });
const OPEN = [
  McpToolCallStatus.AWAITING_APPROVAL,
  McpToolCallStatus.APPROVED,
  McpToolCallStatus.RUNNING,
  McpToolCallStatus.REJECTED,
  McpToolCallStatus.EXPIRED,
];

/**
 * Tool calls through Steward to the registered remote servers. Who may call what is the
 * project's allow list (McpToolGrant) and the caller's role in it (CONTRIBUTOR+, or an
 * agent's service token); without a project only admins may call. A tool whose entry
 * needs approval first creates an Approval and answers with it; once approved, the
 * caller's next call with the same arguments runs it — exactly once, because running
 * needs the one UPDATE APPROVED → RUNNING to succeed, whichever instance or retry asks.
 * Every call, refused, gated, run or failed, is recorded (mcp_tool_calls) and audited
 * (caller, server, tool, arguments digest, outcome, duration) in the hash chain.
 */
export class McpToolCallService {
  constructor(private readonly deps: McpToolCallDeps) {}

  /** Registers the decision hook: an approval's decision moves its call, in the deciding transaction. */
  install(): void {
    this.deps.approvals.onDecided(TOOL_CALL_ACTION, async (tx, approval, status) => {
      const next =
        status === ApprovalStatus.APPROVED
          ? McpToolCallStatus.APPROVED
          : status === ApprovalStatus.REJECTED
            ? McpToolCallStatus.REJECTED
            : McpToolCallStatus.EXPIRED;
      const rows = await tx.em.execute<{ id: string; server_name: string; tool: string; arguments_digest: string }[]>(
        `UPDATE mcp_tool_calls SET status = ?, arguments = CASE WHEN ? THEN arguments ELSE NULL END, updated_at = now()
          WHERE approval_id = ? AND status = 'AWAITING_APPROVAL' RETURNING id, server_name, tool, arguments_digest`,
        [next, next === McpToolCallStatus.APPROVED, approval.id],
      );
      for (const r of rows) {
        this.deps.audit.record(tx, {
          action: 'mcpTool.call',
          entityType: 'McpToolCall',
          entityId: r.id,
          before: { status: 'AWAITING_APPROVAL' },
          after: {
            server: r.server_name,
            tool: r.tool,
            argumentsDigest: r.arguments_digest,
            status: next,
            approvalId: approval.id,
          },
          outcome: next === McpToolCallStatus.APPROVED ? 'SUCCESS' : 'FAILURE',
        });
      }
    });
  }

  // ---------- allow lists ----------

  async allow(scope: Scope, viewer: Viewer, input: GrantInput): Promise<McpToolGrant> {
    const projectId = requireUuid(input.projectId, 'projectId');
    const serverId = requireUuid(input.serverId, 'serverId');
    await this.mayManage(viewer, projectId);
    const tool = input.tool?.trim() || null;
    return inTransaction(scope, async (tx) => {
      if (!(await tx.em.count(McpServer, { id: serverId }))) throw new NotFoundError('McpServer', serverId);
      let grant = await tx.em.findOne(McpToolGrant, { project: projectId, server: serverId, tool });
      const before = grant ? { needsApproval: grant.needsApproval } : null;
      if (grant) grant.needsApproval = input.needsApproval ?? grant.needsApproval;
      else
        grant = tx.em.create(McpToolGrant, {
          project: projectId,
          server: serverId,
          tool,
          needsApproval: input.needsApproval ?? false,
          createdBy: viewer.userId,
        });
      await tx.em.flush();
      this.deps.audit.record(tx, {
        action: 'mcpTool.allow',
        entityType: 'McpToolGrant',
        entityId: grant.id,
        before,
        after: { projectId, serverId, tool, needsApproval: grant.needsApproval },
      });
      return grant;
    });
  }

  async disallow(scope: Scope, viewer: Viewer, id: string): Promise<boolean> {
    const grantId = requireUuid(id);
    return inTransaction(scope, async (tx) => {
      const grant = await tx.em.findOne(McpToolGrant, grantId);
      if (!grant) throw new NotFoundError('McpToolGrant', grantId);
      await this.mayManage(viewer, grant.project.id);
      this.deps.audit.record(tx, {
        action: 'mcpTool.disallow',
        entityType: 'McpToolGrant',
        entityId: grant.id,
        before: {
          projectId: grant.project.id,
          serverId: grant.server.id,
          tool: grant.tool ?? null,
          needsApproval: grant.needsApproval,
        },
      });
      tx.em.remove(grant);
      return true;
    });
  }

  /** A project's allow list, for those who may read the project. */
  async grants(viewer: Viewer, projectId: string): Promise<McpToolGrant[]> {
    const id = requireUuid(projectId, 'projectId');
    await this.deps.projects.policy.require(viewer, id, ProjectRole.VIEWER);
    return this.deps.db
      .query<McpToolGrant>(sql`SELECT id, created_at AS "createdAt", updated_at AS "updatedAt", tool, needs_approval AS "needsApproval", server_id AS server, project_id AS project
      FROM mcp_tool_grants WHERE project_id = ${id}::uuid ORDER BY created_at, id`);
  }

  /** Admins and the project's owner and maintainers keep its allow list (never a service token: an agent does not grant itself tools). */
  private async mayManage(viewer: Viewer, projectId: string) {
    if (viewer.serviceActor) throw new ForbiddenError('Service tokens do not manage allow lists');
    await this.deps.projects.requireWritable(viewer, projectId, ProjectRole.MAINTAINER);
  }

  /** The entry that applies to this call: the tool's own, else the server-wide one; null when the tool is not allowed. */
  async grantFor(projectId: string, serverId: string, tool: string): Promise<{ needsApproval: boolean } | null> {
    const row = await this.deps.db.one<{ needsApproval: boolean }>(sql`
      SELECT needs_approval AS "needsApproval" FROM mcp_tool_grants
       WHERE project_id = ${projectId}::uuid AND server_id = ${serverId}::uuid AND (tool = ${tool} OR tool IS NULL)
       ORDER BY tool NULLS LAST LIMIT 1`);
    return row ?? null;
  }

  /**
   * The tools of active remote servers this caller may call for the project (or, without
   * one, every tool for an admin), for Steward's `/mcp` tool list.
   */
  async callable(viewer: Viewer, projectId: string | null) {
    type Row = {
      server_id: string;
      server_name: string;
      name: string;
      title: string | null;
      description: string | null;
      input_schema: Record<string, unknown>;
      needs_approval: boolean;
    };
    if (!projectId) {
      if (viewer.role !== Role.ADMIN || viewer.serviceActor) return [];
      return this.deps.db
        .query<Row>(sql`SELECT s.id AS server_id, s.name AS server_name, t.name, t.title, t.description, t.input_schema, false AS needs_approval
        FROM mcp_server_tools t JOIN mcp_servers s ON s.id = t.server_id WHERE s.is_active AND s.url IS NOT NULL ORDER BY s.name, t.name`);
    }
    try {
      await this.deps.projects.requireWritable(viewer, projectId, ProjectRole.CONTRIBUTOR);
    } catch {
      return [];
    }
    return this.deps.db
      .query<Row>(sql`SELECT s.id AS server_id, s.name AS server_name, t.name, t.title, t.description, t.input_schema, g.needs_approval
      FROM mcp_server_tools t JOIN mcp_servers s ON s.id = t.server_id
      CROSS JOIN LATERAL (SELECT needs_approval FROM mcp_tool_grants g WHERE g.project_id = ${projectId}::uuid AND g.server_id = s.id AND (g.tool = t.name OR g.tool IS NULL) ORDER BY g.tool NULLS LAST LIMIT 1) g
      WHERE s.is_active AND s.url IS NOT NULL ORDER BY s.name, t.name`);
  }

  // ---------- calls ----------

  async call(scope: Scope, viewer: Viewer, input: CallInput): Promise<ToolCallOutcome> {
    const serverId = requireUuid(input.serverId, 'serverId');
    const projectId = input.projectId ? requireUuid(input.projectId, 'projectId') : null;
    const tool = input.tool;
    const args = input.arguments ?? {};
    if (typeof args !== 'object' || Array.isArray(args))
      throw BadInputError.field('arguments', 'must be a JSON object');
    assertMcpAccess(viewer, projectId);
    const server = await scope.em.fork().findOne(McpServer, serverId);
    if (!server) throw new NotFoundError('McpServer', serverId);
    const digest = sha256(canonicalize(args));
    const record = { server, tool, projectId, digest };

    // Who may: the project's allow list and the caller's role in it; without a project, admins only.
    let needsApproval = false;
    try {
      if (projectId) {
        await this.deps.projects.requireWritable(viewer, projectId, ProjectRole.CONTRIBUTOR);
        const grant = await this.grantFor(projectId, serverId, tool);
        if (!grant) throw new ForbiddenError(`The project's allow list does not include ${server.name}'s tool ${tool}`);
        needsApproval = grant.needsApproval;
      } else if (viewer.role !== Role.ADMIN || viewer.serviceActor) {
        throw new ForbiddenError(
          'Give the projectId whose allow list applies (only admins call tools without a project)',
        );
      }
    } catch (err) {
      // Refusals are on the record too (a stranger's NOT_FOUND, an archived project's CONFLICT included).
      if (err instanceof AppError) await this.refused(scope, record, `${err.code}: ${err.message}`);
      throw err;
    }
    if (!server.isActive || !server.url)
      throw new ConflictError(`${server.name} is ${server.url ? 'disabled' : 'a local server Steward does not reach'}`);
    const known = await this.deps.db.one(
      sql`SELECT 1 AS one FROM mcp_server_tools WHERE server_id = ${serverId}::uuid AND name = ${tool}`,
    );
    if (!known) throw new NotFoundError('McpTool', tool);

    if (!needsApproval) {
      const call = await this.open(scope, record, McpToolCallStatus.RUNNING, null, null);
      return this.run(scope, call, args);
    }
    return this.gated(scope, viewer, record, args);
  }

  /** A gated call: the open one with the same caller, project, server, tool and arguments, or a new one with its approval. */
  private async gated(
    scope: Scope,
    viewer: Viewer,
    record: CallRecord,
    args: Record<string, unknown>,
  ): Promise<ToolCallOutcome> {
    const { callerId, callerActor } = callerKey(viewer);
    const open = await scope.em.fork().findOne(
      McpToolCall,
      {
        caller: callerId,
        callerActor,
        project: record.projectId,
        server: record.server.id,
        tool: record.tool,
        argumentsDigest: record.digest,
        consumed: false,
        status: { $in: OPEN },
      },
      { orderBy: { id: 'DESC' } },
    );
    if (!open) {
      return inTransaction(scope, async (tx) => {
        const approval = await this.deps.approvals.request(tx, viewer, {
          projectId: record.projectId,
          actionType: TOOL_CALL_ACTION,
          details: {
            server: record.server.name,
            serverId: record.server.id,
            tool: record.tool,
            argumentsDigest: record.digest,
            arguments: withoutNul(args),
          },
        });
        const call = await this.open(tx, record, McpToolCallStatus.AWAITING_APPROVAL, args, approval.id);
        return { call, approval, content: null, structuredContent: null, isError: false };
      });
    }
    const approval = await scope.em.fork().findOneOrFail(Approval, open.approval!.id);
    switch (open.status) {
      case McpToolCallStatus.AWAITING_APPROVAL:
        return { call: open, approval, content: null, structuredContent: null, isError: false };
      case McpToolCallStatus.REJECTED:
      case McpToolCallStatus.EXPIRED: {
        await this.deps.db.query(
          sql`UPDATE mcp_tool_calls SET consumed = true, updated_at = now() WHERE id = ${open.id}::uuid`,
        );
        const why =
          open.status === McpToolCallStatus.REJECTED
            ? `rejected${approval.notes ? `: ${approval.notes}` : ''}`
            : 'expired before anyone decided';
        return {
          call: open,
          approval,
          content: [{ type: 'text', text: `Not run: the approval was ${why}` }],
          structuredContent: null,
          isError: true,
        };
      }
      default: {
        // APPROVED: this caller runs it, if it is the one that moves it to RUNNING.
        const [claimed] = await this.deps.db.query<{ arguments: Record<string, unknown> }>(
          sql`UPDATE mcp_tool_calls SET status = 'RUNNING', updated_at = now() WHERE id = ${open.id}::uuid AND status = 'APPROVED' RETURNING arguments`,
        );
        if (claimed) return this.run(scope, open, claimed.arguments ?? {}, approval);
        return this.awaitFinished(scope, open.id, approval);
      }
    }
  }

  /**
   * Another retry (or instance) runs this call: its outcome once it has one. A call RUNNING
   * for longer than any call may take lost its runner (an instance stopped mid-call): it is
   * FAILED, never run again — the server may have done it, so at most once.
   */
  private async awaitFinished(scope: Scope, id: string, approval: Approval): Promise<ToolCallOutcome> {
    const deadline = Date.now() + WAIT_FOR_RUNNING_MS;
    await inTransaction(scope, async (tx) => {
      const [lost] = await tx.em.execute<
        { id: string; server_name: string; tool: string; arguments_digest: string; project_id: string | null }[]
      >(
        `UPDATE mcp_tool_calls SET status = 'FAILED', consumed = true, arguments = NULL, is_error = true, error = ?, finished_at = now(), updated_at = now()
          WHERE id = ? AND status = 'RUNNING' AND updated_at < now() - make_interval(secs => ?) RETURNING id, server_name, tool, arguments_digest, project_id`,
        [INTERRUPTED, id, WAIT_FOR_RUNNING_MS / 1000],
      );
      if (lost) {
        this.deps.audit.record(tx, {
          action: 'mcpTool.call',
          entityType: 'McpToolCall',
          entityId: lost.id,
          after: {
            server: lost.server_name,
            tool: lost.tool,
            projectId: lost.project_id,
            argumentsDigest: lost.arguments_digest,
            status: McpToolCallStatus.FAILED,
            error: INTERRUPTED,
            approvalId: approval.id,
          },
          outcome: 'FAILURE',
        });
      }
    });
    for (;;) {
      const call = await scope.em.fork().findOneOrFail(McpToolCall, id);
      if (call.status === McpToolCallStatus.SUCCEEDED || call.status === McpToolCallStatus.FAILED)
        return this.outcome(call, approval);
      if (Date.now() > deadline) throw new ConflictError('This tool call is still running');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private outcome(call: McpToolCall, approval: Approval | null): ToolCallOutcome {
    if (!call.result && call.error)
      return { call, approval, content: [{ type: 'text', text: call.error }], structuredContent: null, isError: true };
    const r = (call.result ?? {}) as {
      content?: CallToolResult['content'];
      structuredContent?: Record<string, unknown>;
    };
    return {
      call,
      approval,
      content: r.content ?? null,
      structuredContent: r.structuredContent ?? null,
      isError: call.isError ?? call.status === McpToolCallStatus.FAILED,
    };
  }

  private async open(
    scope: Scope,
    r: CallRecord,
    status: McpToolCallStatus,
    args: Record<string, unknown> | null,
    approvalId: string | null,
  ): Promise<McpToolCall> {
    const { callerId, callerActor } = callerKey(scope.viewer!);
    return inTransaction(scope, async (tx) => {
      const call = tx.em.create(McpToolCall, {
        project: r.projectId,
        server: r.server.id,
        serverName: r.server.name,
        tool: r.tool,
        caller: callerId,
        callerActor,
        arguments: args ? withoutNul(args) : null,
        argumentsDigest: r.digest,
        status,
        approval: approvalId,
      });
      await tx.em.flush();
      if (status === McpToolCallStatus.AWAITING_APPROVAL) {
        this.deps.audit.record(tx, {
          action: 'mcpTool.call',
          entityType: 'McpToolCall',
          entityId: call.id,
          after: {
            server: r.server.name,
            serverId: r.server.id,
            tool: r.tool,
            projectId: r.projectId,
            argumentsDigest: r.digest,
            status,
            approvalId,
          },
        });
      }
      return call;
    });
  }

  private async refused(scope: Scope, r: CallRecord, reason: string) {
    const call = await this.open(scope, r, McpToolCallStatus.REFUSED, null, null);
    await inTransaction(scope, async (tx) => {
      await tx.em.execute(
        `UPDATE mcp_tool_calls SET consumed = true, error = ?, finished_at = now(), duration_ms = 0 WHERE id = ?`,
        [reason, call.id],
      );
      this.deps.audit.record(tx, {
        action: 'mcpTool.call',
        entityType: 'McpToolCall',
        entityId: call.id,
        after: {
          server: r.server.name,
          serverId: r.server.id,
          tool: r.tool,
          projectId: r.projectId,
          argumentsDigest: r.digest,
          status: McpToolCallStatus.REFUSED,
          reason,
          durationMs: 0,
        },
        outcome: 'FAILURE',
      });
    });
  }

  /** Runs a call this caller holds (RUNNING), and records what came of it, whatever that was. */
  private async run(
    scope: Scope,
    call: McpToolCall,
    args: Record<string, unknown>,
    approval: Approval | null = null,
  ): Promise<ToolCallOutcome> {
    const started = performance.now();
    let result: CallToolResult | null = null;
    let failure: string | null = null;
    try {
      const server = await scope.em.fork().findOneOrFail(McpServer, call.server!.id);
      result = await callRemoteTool(this.deps.registry.remote(server), call.tool, args);
    } catch (err) {
      failure = describeFailure(err);
    }
    const durationMs = Math.round(performance.now() - started);
    const isError = failure !== null || result?.isError === true;
    const status = isError ? McpToolCallStatus.FAILED : McpToolCallStatus.SUCCEEDED;
    const content = result?.content ?? [
      { type: 'text' as const, text: `The MCP server could not be reached: ${failure}` },
    ];
    const structuredContent = (result?.structuredContent as Record<string, unknown> | undefined) ?? null;
    let kept: Record<string, unknown> = withoutNul({ content, structuredContent });
    if (JSON.stringify(kept).length > MAX_KEPT_RESULT_BYTES)
      kept = {
        content: [
          { type: 'text', text: 'The result was too large to keep; it was returned to the caller that ran the call.' },
        ],
        structuredContent: null,
      };
    const error =
      failure ??
      (isError
        ? content
            .map((c) => (c.type === 'text' ? c.text : ''))
            .join(' ')
            .slice(0, 2000) || 'the tool reported an error'
        : null);
    await inTransaction(scope, async (tx) => {
      await tx.em.execute(
        `UPDATE mcp_tool_calls SET status = ?, consumed = true, arguments = NULL, is_error = ?, result = ?, error = ?, duration_ms = ?, finished_at = now(), updated_at = now() WHERE id = ?`,
        [status, isError, JSON.stringify(kept), error, durationMs, call.id],
      );
      this.deps.audit.record(tx, {
        action: 'mcpTool.call',
        entityType: 'McpToolCall',
        entityId: call.id,
        after: {
          server: call.serverName,
          serverId: call.server?.id ?? null,
          tool: call.tool,
          projectId: call.project?.id ?? null,
          argumentsDigest: call.argumentsDigest,
          status,
          durationMs,
          approvalId: approval?.id ?? null,
          ...(error ? { error: error.slice(0, 500) } : {}),
        },
        outcome: isError ? 'FAILURE' : 'SUCCESS',
      });
    });
    const finished = await scope.em.fork().findOneOrFail(McpToolCall, call.id);
    return { call: finished, approval, content, structuredContent, isError };
  }

  /** `mcpToolCalls`: admins see every call; project owners and maintainers their projects'. */
  list(
    viewer: Viewer,
    fields: Iterable<string>,
    where: { projectId?: string | null; serverId?: string | null; status?: McpToolCallStatus[] | null },
    page: PageArgs,
  ) {
    const visible =
      viewer.role === Role.ADMIN && !viewer.serviceActor
        ? null
        : sql`EXISTS (SELECT 1 FROM project_members vm JOIN projects vp ON vp.id = vm.project_id
                      WHERE vm.project_id = t.project_id AND vm.user_id = ${viewer.userId}::uuid AND vm.role IN ('OWNER', 'MAINTAINER') AND vp.status <> 'DELETED')`;
    return paginate(
      this.deps.db,
      {
        model: readModel(McpToolCall),
        fields,
        where: and([
          visible,
          where.projectId ? sql`t.project_id = ${requireUuid(where.projectId, 'projectId')}::uuid` : null,
          where.serverId ? sql`t.server_id = ${requireUuid(where.serverId, 'serverId')}::uuid` : null,
          where.status?.length ? sql`t.status = ANY(${where.status}::mcp_tool_call_status[])` : null,
        ]),
        sort: NEWEST_FIRST,
      },
      page,
    );
  }
}

interface CallRecord {
  server: McpServer;
  tool: string;
  projectId: string | null;
  digest: string;
}
