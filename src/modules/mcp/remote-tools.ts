import type { MikroORM } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';

import { AppError } from '../../shared/errors.js';
import type { RequestMeta, Viewer } from '../../shared/scope.js';
import type { McpToolCallService } from './mcp-tool-call.service.js';
import { toolFailure, type RemoteTools } from './mcp.routes.js';
import { exposedName } from './tool-names.js';

export { exposedName };

const GATED_NOTE =
  " Needs a human's approval: the first call answers with the approval (see get_approval); call again with the same arguments once it is approved, and it runs once.";

/**
 * The registered servers' tools on Steward's own `/mcp`, as `<server name>__<tool>`: the
 * ones the caller may call for the project it names (X-Steward-Project), each call going
 * through McpToolCallService like `callMcpTool` (allow list, approval, audit).
 */
export function remoteTools(orm: () => MikroORM, calls: McpToolCallService): RemoteTools {
  return {
    async list(viewer, projectId) {
      const rows = await calls.callable(viewer, projectId);
      return rows.map((r): Tool => ({
        name: exposedName(r.server_name, r.name),
        title: r.title ?? undefined,
        description: `[${r.server_name}] ${r.description ?? r.name}${r.needs_approval ? GATED_NOTE : ''}`,
        inputSchema: r.input_schema as Tool['inputSchema'],
      }));
    },

    async call(
      viewer: Viewer,
      meta: RequestMeta,
      projectId: string | null,
      name: string,
      args: Record<string, unknown>,
    ): Promise<CallToolResult | null> {
      const target = (await calls.callable(viewer, projectId)).find((r) => exposedName(r.server_name, r.name) === name);
      if (!target) return null;
      try {
        const scope = { em: orm().em.fork() as EntityManager, viewer, meta };
        const out = await calls.call(scope, viewer, {
          serverId: target.server_id,
          tool: target.name,
          arguments: args,
          projectId,
        });
        if (out.content)
          return {
            content: out.content,
            ...(out.structuredContent ? { structuredContent: out.structuredContent } : {}),
            isError: out.isError,
            _meta: { 'steward/toolCallId': out.call.id },
          };
        const a = out.approval!;
        const approval = { approvalId: a.id, status: a.status, expiresAt: a.expiresAt?.toISOString() ?? null };
        return {
          content: [
            {
              type: 'text',
              text: `Waiting for a human's approval (${a.id}, ${a.status}). Call this tool again with the same arguments once it is approved; get_approval can wait for the decision.`,
            },
          ],
          structuredContent: { approval },
          _meta: { 'steward/toolCallId': out.call.id },
        };
      } catch (err) {
        if (err instanceof AppError) return toolFailure(err.code, err.message, err.details);
        throw err;
      }
    },
  };
}
