import type { EntityManager } from '@mikro-orm/postgresql';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import pLimit from 'p-limit';

import { BadInputError, NotFoundError, requireUuid } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { inTransaction, systemMeta, type Scope } from '../../shared/scope.js';
import type { McpServerService } from '../infrastructure/index.js';
import { McpServer } from '../infrastructure/mcp-server.entity.js';
import { McpServerTool } from './mcp-server-tool.entity.js';
import { describeFailure, probe, type RemoteServer } from './remote-client.js';

export interface McpRegistryDeps {
  logger: Logger;
  mcpServers: McpServerService;
}

/** Probes of one heartbeat run in flight at once. */
const PROBE_CONCURRENCY = 8;

/** PostgreSQL cannot keep U+0000 in jsonb or text: a remote server's schemas lose it. */
export function withoutNul<T>(value: T): T {
  const clean = (v: unknown): unknown => {
    if (typeof v === 'string') return v.replace(/\u0000/g, '');
    if (Array.isArray(v)) return v.map(clean);
    if (v && typeof v === 'object')
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k.replace(/\u0000/g, ''), clean(x)]));
    return v;
  };
  return value == null ? value : (clean(JSON.parse(JSON.stringify(value))) as T);
}

/**
 * Steward's client side of the registry: every active server with a url is reached with
 * the official SDK client on the heartbeat (a job, once across instances) — initialize,
 * ping, tools/list — and the answer kept: its tools (names become `capabilities`, with
 * their schemas), ACTIVE with `lastHeartbeatAt`, or ERROR with `lastError`; a change of
 * status is audited and pushed on `mcpServerStatusChanged` by McpServerService.
 */
export class McpRegistryService {
  constructor(private readonly deps: McpRegistryDeps) {}

  /** Where and how to reach a registered remote server (secret headers opened). */
  remote(server: Pick<McpServer, 'id' | 'url' | 'headers'>): RemoteServer {
    return { url: server.url!, headers: this.deps.mcpServers.revealHeaders(server) };
  }

  /** Reaches one server now (refreshMcpServer): its tools and status as found. */
  async refresh(scope: Scope, id: string): Promise<McpServer> {
    const serverId = requireUuid(id);
    const server = await scope.em.fork().findOne(McpServer, serverId);
    if (!server) throw new NotFoundError('McpServer', serverId);
    if (!server.url)
      throw BadInputError.field('id', 'is a local (command) server: Steward reaches only servers with a url');
    if (!server.isActive) throw BadInputError.field('id', 'is disabled');
    return this.probeOne(scope, server);
  }

  /** The heartbeat: every active remote server, a few at a time. */
  async probeAll(em: EntityManager): Promise<number> {
    const servers = await em.find(McpServer, { isActive: true, url: { $ne: null } });
    const limit = pLimit(PROBE_CONCURRENCY);
    const scope: Scope = { em, viewer: null, meta: systemMeta('mcp.heartbeat') };
    await Promise.all(
      servers.map((s) =>
        limit(() =>
          this.probeOne({ ...scope, em: em.fork() as EntityManager }, s).catch((err) =>
            this.deps.logger.error({ err, module: 'mcp', mcpServerId: s.id }, 'MCP probe could not be recorded'),
          ),
        ),
      ),
    );
    return servers.length;
  }

  private async probeOne(scope: Scope, server: McpServer): Promise<McpServer> {
    let tools: Tool[];
    try {
      tools = await probe(this.remote(server));
    } catch (err) {
      const error = describeFailure(err);
      this.deps.logger.warn(
        { module: 'mcp', mcpServerId: server.id, mcpServer: server.name, error },
        `MCP server ${server.name} did not answer`,
      );
      return this.deps.mcpServers.recordProbe(scope, server.id, { ok: false, error });
    }
    return inTransaction(scope, async (tx) => {
      await this.replaceTools(tx.em, server.id, tools);
      return this.deps.mcpServers.recordProbe(tx, server.id, { ok: true, capabilities: tools.map((t) => t.name) });
    });
  }

  private async replaceTools(em: EntityManager, serverId: string, tools: Tool[]) {
    const names = tools.map((t) => t.name);
    await em.nativeDelete(McpServerTool, { server: serverId, name: { $nin: names } });
    for (const t of tools) {
      const row = {
        title: t.title ?? t.annotations?.title ?? null,
        description: t.description ?? null,
        inputSchema: withoutNul(t.inputSchema) as Record<string, unknown>,
        outputSchema: withoutNul(t.outputSchema ?? null) as Record<string, unknown> | null,
        annotations: withoutNul(t.annotations ?? null) as Record<string, unknown> | null,
      };
      const existing = await em.findOne(McpServerTool, { server: serverId, name: t.name });
      if (existing) em.assign(existing, row);
      else em.create(McpServerTool, { server: serverId, name: t.name, ...row });
    }
    await em.flush();
  }
}
