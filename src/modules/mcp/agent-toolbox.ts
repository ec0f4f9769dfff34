import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import sql from 'sql-template-tag';

import type { SqlClient } from '../../db/sql.js';
import { AppError } from '../../shared/errors.js';
import type { Scope, Viewer } from '../../shared/scope.js';
import { tokenAllows } from '../../shared/token-scopes.js';
import type { AgentToolbox, AgentToolOutcome, AgentToolSet, FunctionTool } from '../ai/index.js';
import type { ToolCall } from '../billing/index.js';
import { withoutNul } from './mcp-registry.service.js';
import { McpToolCallStatus } from './mcp-tool-call.entity.js';
import type { McpToolCallService } from './mcp-tool-call.service.js';
import { exposedName } from './tool-names.js';

/** The most of a tool's result handed back to the model (it is part of the next prompt, and of its reservation). */
export const MAX_TOOL_RESULT_CHARS = 16_000;

const GATED_NOTE = ' Needs a human approval: calling it requests one, and the turn ends until it is decided.';

/** What of a tool's answer the model reads: its text parts, anything else as JSON. */
function textOf(content: CallToolResult['content'] | null, structured: Record<string, unknown> | null): string {
  const text = (content ?? []).map((c) => (c.type === 'text' ? c.text : JSON.stringify(c))).join('\n');
  const all = text || (structured ? JSON.stringify(structured) : '');
  return all.length > MAX_TOOL_RESULT_CHARS ? `${all.slice(0, MAX_TOOL_RESULT_CHARS)} [truncated]` : all;
}

function parseArguments(text: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(text || '{}');
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/**
 * The registered MCP servers' tools for an agent in a conversation: the ones the
 * conversation's project allows its owner (McpToolCallService.callable, the list `/mcp`
 * shows as `<server name>__<tool>`), offered in OpenAI's function-calling format with the
 * schemas the servers published. Every call the model makes goes through
 * McpToolCallService.call, as its owner, like `callMcpTool`: the allow list, approval
 * gating, the mcp_tool_calls record and the audit entry are that one gate's. A name that
 * is a registered tool but not offered goes through the gate too (and is refused, on the
 * record); a name that is nothing is answered as an error without a call.
 */
export class McpAgentToolbox implements AgentToolbox {
  constructor(private readonly deps: { db: SqlClient; calls: McpToolCallService }) {}

  async offer(scope: Scope, viewer: Viewer, projectId: string | null): Promise<AgentToolSet | null> {
    // Tools come from a project's allow list; a token without the mcp scope reaches none.
    if (!projectId || !tokenAllows(viewer, 'mcp', projectId)) return null;
    const rows = await this.deps.calls.callable(viewer, projectId);
    if (!rows.length) return null;
    const offered = new Map(rows.map((r) => [exposedName(r.server_name, r.name), r]));
    const tools: FunctionTool[] = [...offered].map(([name, r]) => ({
      type: 'function',
      function: {
        name,
        description: `[${r.server_name}] ${r.description ?? r.title ?? r.name}${r.needs_approval ? GATED_NOTE : ''}`,
        parameters: r.input_schema ?? { type: 'object' },
      },
    }));
    return { tools, run: async (call) => withoutNul(await this.run(scope, viewer, projectId, offered, call)) };
  }

  private async run(
    scope: Scope,
    viewer: Viewer,
    projectId: string,
    offered: Map<string, { server_id: string; server_name: string; name: string }>,
    call: ToolCall,
  ): Promise<AgentToolOutcome> {
    const name = call.function.name;
    const args = parseArguments(call.function.arguments);
    const target = offered.get(name) ?? (await this.registered(name));
    const base = { server: target?.server_name ?? null, tool: target?.name ?? null, arguments: args };
    const none = { mcpToolCallId: null, approvalId: null };
    if (!target) return { ...base, ...none, status: 'INVALID', result: `Error: there is no tool named ${name}` };
    if (!args) return { ...base, ...none, status: 'INVALID', result: 'Error: the arguments must be a JSON object' };
    try {
      const out = await this.deps.calls.call(scope, viewer, {
        serverId: target.server_id,
        tool: target.name,
        arguments: args,
        projectId,
      });
      const ids = { mcpToolCallId: out.call.id, approvalId: out.approval?.id ?? null };
      if (!out.content) {
        const a = out.approval!;
        return {
          ...base,
          ...ids,
          status: 'AWAITING_APPROVAL',
          result: `Waiting for a human's approval (approval ${a.id}): not run yet.`,
        };
      }
      const refusedByApproval =
        out.call.status === McpToolCallStatus.REJECTED || out.call.status === McpToolCallStatus.EXPIRED;
      const text = textOf(out.content, out.structuredContent);
      return {
        ...base,
        ...ids,
        status: refusedByApproval ? 'REJECTED' : out.isError ? 'FAILED' : 'SUCCEEDED',
        result: out.isError ? `Error: ${text}` : text,
      };
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      return { ...base, ...none, status: 'REFUSED', result: `Error: ${err.code}: ${err.message}` };
    }
  }

  /** A registered tool of an active remote server by its exposed name (one the model was not offered). */
  private async registered(name: string) {
    const rows = await this.deps.db.query<{ server_id: string; server_name: string; name: string }>(sql`
      SELECT s.id AS server_id, s.name AS server_name, t.name FROM mcp_server_tools t JOIN mcp_servers s ON s.id = t.server_id
       WHERE s.is_active AND s.url IS NOT NULL AND position('__' in ${name}) > 0`);
    return rows.find((r) => exposedName(r.server_name, r.name) === name) ?? null;
  }
}
