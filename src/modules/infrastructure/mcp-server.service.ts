import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import sql from 'sql-template-tag';

import type { SqlClient } from '../../db/sql.js';
import type { EventBus } from '../../events/bus.js';
import { conflictOnDuplicate } from '../../shared/conflict.js';
import { paginate, type Connection, type PageArgs } from '../../shared/connection.js';
import type { Envelope } from '../../shared/crypto.js';
import { BadInputError, NotFoundError, requireUuid } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { and, readModel } from '../../shared/read-model.js';
import { inTransaction, systemMeta, type Scope, type Viewer } from '../../shared/scope.js';
import type { AuditService } from '../audit/index.js';
import type { UserService } from '../identity/index.js';
import type { NotificationService } from '../work/index.js';
import { NotificationPriority, NotificationType } from '../work/notification.entity.js';
import { MCP_SERVER_STATUS_CHANGED, type McpServerEvent } from './infrastructure.events.js';
import type {
  McpEnvVarInput,
  McpServerHeartbeatInput,
  McpServerWhere,
  RegisterMcpServerInput,
  UpdateMcpServerInput,
} from './infrastructure.inputs.js';
import { McpServer, McpServerStatus, type StoredEnvVar } from './mcp-server.entity.js';

export interface McpServerDeps {
  config: { MCP_HEARTBEAT_TIMEOUT_SECONDS: number };
  db: SqlClient;
  bus: EventBus;
  audit: AuditService;
  envelope: Envelope;
  logger: Logger;
  notifications: Pick<NotificationService, 'notify'>;
  users: Pick<UserService, 'activeAdminIds'>;
}

/** An environment variable as shown: secrets masked. */
export interface ShownEnvVar {
  name: string;
  secret: boolean;
  value: string | null;
  last4: string | null;
}

/** What the audit trail keeps of a server: never a secret value. */
const snapshot = (s: McpServer) => ({
  name: s.name,
  serverType: s.serverType,
  command: s.command ?? null,
  url: s.url ?? null,
  headers: s.headers.map((v) => (v.secret ? { name: v.name, secret: true } : { name: v.name, value: v.value })),
  args: s.args,
  environment: s.environment.map((v) => (v.secret ? { name: v.name, secret: true } : { name: v.name, value: v.value })),
  capabilities: s.capabilities,
  isActive: s.isActive,
  status: s.status,
});

/** The associated data an MCP server's secret variable is sealed with (also used by `keys:rotate`). */
export const envContext = (serverId: string, name: string) => `mcpServer:${serverId}|env:${name}`;
/** The associated data a remote MCP server's secret header is sealed with (also used by `keys:rotate`). */
export const headerContext = (serverId: string, name: string) => `mcpServer:${serverId}|header:${name}`;

export function showEnvironment(stored: readonly StoredEnvVar[] | null | undefined): ShownEnvVar[] {
  return (stored ?? []).map((v) =>
    v.secret
      ? { name: v.name, secret: true, value: null, last4: v.last4 }
      : { name: v.name, secret: false, value: v.value, last4: null },
  );
}

/**
 * The MCP server registry, kept by admins. The processes report heartbeats
 * with a service token: a heartbeat makes an enabled server ACTIVE (or ERROR when it
 * reports a failure); a job marks ACTIVE servers whose heartbeats stopped as ERROR.
 * Status changes are audited and published to admins (mcpServerStatusChanged).
 */
export class McpServerService {
  constructor(private readonly deps: McpServerDeps) {}

  async register(scope: Scope, viewer: Viewer, input: RegisterMcpServerInput): Promise<McpServer> {
    if (!input.command && !input.url)
      throw BadInputError.field('url', 'give the url of a remote server or the command of a local one');
    return conflictOnDuplicate(
      () =>
        inTransaction(scope, async (tx) => {
          const server = tx.em.create(McpServer, {
            name: input.name.trim(),
            serverType: input.serverType.trim(),
            command: input.command ?? null,
            url: input.url ?? null,
            args: input.args ?? [],
            capabilities: unique(input.capabilities ?? []),
            isActive: input.isActive ?? true,
            createdBy: viewer.serviceActor ? null : viewer.userId,
          });
          server.environment = this.seal(server.id, input.environment ?? [], [], 'environment', envContext);
          server.headers = this.seal(server.id, input.headers ?? [], [], 'headers', headerContext);
          await tx.em.flush();
          this.deps.audit.record(tx, {
            action: 'mcpServer.register',
            entityType: 'McpServer',
            entityId: server.id,
            after: snapshot(server),
          });
          return server;
        }),
      `An MCP server named ${input.name} is already registered`,
    );
  }

  async update(scope: Scope, input: UpdateMcpServerInput): Promise<McpServer> {
    const id = requireUuid(input.id);
    return conflictOnDuplicate(
      () =>
        inTransaction(scope, async (tx) => {
          const server = await this.locked(tx.em, id);
          const before = snapshot(server);
          if (input.name != null) server.name = input.name.trim();
          if (input.serverType != null) server.serverType = input.serverType.trim();
          if (input.command != null) server.command = input.command;
          if (input.url != null) server.url = input.url;
          if (input.headers != null)
            server.headers = this.seal(server.id, input.headers, server.headers, 'headers', headerContext);
          if (input.args != null) server.args = input.args;
          if (input.capabilities != null) server.capabilities = unique(input.capabilities);
          if (input.environment != null)
            server.environment = this.seal(server.id, input.environment, server.environment, 'environment', envContext);
          let statusChanged = false;
          if (input.isActive != null && input.isActive !== server.isActive) {
            server.isActive = input.isActive;
            // Disabled: INACTIVE. Enabled again: INACTIVE until its next heartbeat.
            statusChanged = this.setStatus(server, McpServerStatus.INACTIVE, null);
          }
          await tx.em.flush();
          this.deps.audit.record(tx, {
            action: 'mcpServer.update',
            entityType: 'McpServer',
            entityId: server.id,
            before,
            after: snapshot(server),
          });
          if (statusChanged) await this.publish(tx, server);
          return server;
        }),
      `An MCP server named ${input.name} is already registered`,
    );
  }

  async remove(scope: Scope, id: string): Promise<boolean> {
    const serverId = requireUuid(id);
    return inTransaction(scope, async (tx) => {
      const server = await this.locked(tx.em, serverId);
      this.deps.audit.record(tx, {
        action: 'mcpServer.delete',
        entityType: 'McpServer',
        entityId: server.id,
        before: snapshot(server),
      });
      tx.em.remove(server);
      return true;
    });
  }

  /** The server's process says it is alive (or, with ok: false, that it failed). */
  async heartbeat(scope: Scope, input: McpServerHeartbeatInput): Promise<McpServer> {
    const id = requireUuid(input.id);
    return inTransaction(scope, async (tx) => {
      const server = await this.locked(tx.em, id);
      const before = snapshot(server);
      server.lastHeartbeatAt = new Date();
      if (input.capabilities != null) server.capabilities = unique(input.capabilities);
      const ok = input.ok ?? true;
      const changed = server.isActive
        ? this.setStatus(
            server,
            ok ? McpServerStatus.ACTIVE : McpServerStatus.ERROR,
            ok ? null : (input.error ?? 'the server reported a failure'),
          )
        : false;
      if (changed || JSON.stringify(before.capabilities) !== JSON.stringify(server.capabilities)) {
        this.deps.audit.record(tx, {
          action: changed ? 'mcpServer.status' : 'mcpServer.capabilities',
          entityType: 'McpServer',
          entityId: server.id,
          before: { status: before.status, capabilities: before.capabilities },
          after: { status: server.status, capabilities: server.capabilities, error: server.lastError ?? null },
        });
      }
      if (changed) await this.publish(tx, server);
      if (changed && server.status === McpServerStatus.ERROR)
        await this.notifyError(tx, [{ id: server.id, name: server.name, error: server.lastError ?? null }]);
      return server;
    });
  }

  /** Admins are told of an MCP server that failed or went silent. */
  private async notifyError(tx: Scope, servers: { id: string; name: string; error: string | null }[]) {
    if (!servers.length) return;
    const admins = await this.deps.users.activeAdminIds();
    await this.deps.notifications.notify(
      tx,
      servers.flatMap((s) =>
        admins.map((userId) => ({
          userId,
          type: NotificationType.ERROR,
          priority: NotificationPriority.HIGH,
          title: `MCP server ${s.name} is in error`,
          message: s.error,
          data: { mcpServerId: s.id },
        })),
      ),
    );
  }

  /** ACTIVE, enabled servers silent for MCP_HEARTBEAT_TIMEOUT_SECONDS become ERROR. */
  async markSilent(em: EntityManager): Promise<number> {
    const seconds = this.deps.config.MCP_HEARTBEAT_TIMEOUT_SECONDS;
    const scope: Scope = { em, viewer: null, meta: systemMeta('infrastructure.mcpHeartbeats') };
    return inTransaction(scope, async (tx) => {
      const rows = await tx.em.execute<{ id: string; name: string; last_heartbeat_at: Date | null }[]>(
        `UPDATE mcp_servers SET status = 'ERROR', last_error = ?, status_changed_at = now(), updated_at = now()
          WHERE id IN (SELECT id FROM mcp_servers WHERE is_active AND status = 'ACTIVE'
                         AND coalesce(last_heartbeat_at, status_changed_at) < now() - make_interval(secs => ?)
                       FOR UPDATE SKIP LOCKED)
          RETURNING id, name, last_heartbeat_at`,
        [`no heartbeat for ${seconds} s`, seconds],
      );
      for (const r of rows) {
        this.deps.audit.record(tx, {
          action: 'mcpServer.heartbeatTimeout',
          entityType: 'McpServer',
          entityId: r.id,
          actorId: null,
          actorLabel: 'job:infrastructure.mcpHeartbeats',
          before: { status: McpServerStatus.ACTIVE, lastHeartbeatAt: r.last_heartbeat_at },
          after: { status: McpServerStatus.ERROR },
        });
        await this.deps.bus.publish(tx.em, MCP_SERVER_STATUS_CHANGED, {
          mcpServerId: r.id,
          status: McpServerStatus.ERROR,
        } satisfies McpServerEvent);
        this.deps.logger.warn(
          { module: 'infrastructure', mcpServerId: r.id, mcpServer: r.name, lastHeartbeatAt: r.last_heartbeat_at },
          `MCP server ${r.name} missed its heartbeats: marked ERROR`,
        );
      }
      await this.notifyError(
        tx,
        rows.map((r) => ({ id: r.id, name: r.name, error: `no heartbeat for ${seconds} s` })),
      );
      return rows.length;
    });
  }

  list(fields: Iterable<string>, where: McpServerWhere, page: PageArgs): Promise<Connection<Record<string, unknown>>> {
    return paginate(
      this.deps.db,
      {
        model: readModel(McpServer),
        fields,
        where: and([
          where.status?.length ? sql`t.status = ANY(${where.status}::mcp_server_status[])` : null,
          where.isActive != null ? sql`t.is_active = ${where.isActive}` : null,
          where.serverType ? sql`t.server_type = ${where.serverType}` : null,
        ]),
        sort: { property: 'id', direction: 'ASC', type: 'uuid' },
      },
      page,
    );
  }

  private setStatus(server: McpServer, status: McpServerStatus, error: string | null): boolean {
    if (error !== null || status === McpServerStatus.ACTIVE) server.lastError = error;
    if (server.status === status) return false;
    server.status = status;
    server.statusChangedAt = new Date();
    return true;
  }

  private async locked(em: EntityManager, id: string): Promise<McpServer> {
    const server = await em.findOne(McpServer, id, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!server) throw new NotFoundError('McpServer', id);
    return server;
  }

  /**
   * The environment to store: plain values as given, secret values sealed with the
   * Envelope (bound to this server and the variable's name). A secret given without a
   * value keeps the value it had.
   */
  private seal(
    serverId: string,
    vars: readonly McpEnvVarInput[],
    current: readonly StoredEnvVar[],
    field: 'environment' | 'headers',
    context: (serverId: string, name: string) => string,
  ): StoredEnvVar[] {
    const seen = new Set<string>();
    // Header names are case-insensitive; environment variable names are not.
    const key = (name: string) => (field === 'headers' ? name.toLowerCase() : name);
    return vars.map((v) => {
      if (seen.has(key(v.name))) throw BadInputError.field(field, `${v.name} is given twice`);
      seen.add(key(v.name));
      if (!v.secret) {
        if (v.value == null) throw BadInputError.field(field, `${v.name} needs a value`);
        return { name: v.name, secret: false, value: v.value };
      }
      if (v.value == null) {
        const kept = current.find((c) => c.name === v.name && c.secret);
        if (!kept) throw BadInputError.field(field, `${v.name} needs a value`);
        return kept;
      }
      return {
        name: v.name,
        secret: true,
        sealed: this.deps.envelope.encrypt(v.value, context(serverId, v.name)),
        last4: v.value.length >= 8 ? v.value.slice(-4) : null,
      };
    });
  }

  /** A remote server's request headers in clear, for Steward's own MCP client. Never exposed through the API. */
  revealHeaders(server: Pick<McpServer, 'id' | 'headers'>): Record<string, string> {
    return Object.fromEntries(
      server.headers.map((h) => [
        h.name,
        h.secret ? this.deps.envelope.decrypt(h.sealed, headerContext(server.id, h.name)) : h.value,
      ]),
    );
  }

  /**
   * What Steward's own MCP client found when it reached (or failed to reach) a remote
   * server: like a heartbeat, except that a server not reached keeps its last heartbeat
   * time and its capabilities (the tools it listed when last reached).
   */
  async recordProbe(
    scope: Scope,
    id: string,
    probe: { ok: true; capabilities: string[] } | { ok: false; error: string },
  ): Promise<McpServer> {
    if (probe.ok) return this.heartbeat(scope, { id, ok: true, capabilities: probe.capabilities });
    return inTransaction(scope, async (tx) => {
      const server = await this.locked(tx.em, id);
      const before = server.status;
      const changed = server.isActive
        ? this.setStatus(server, McpServerStatus.ERROR, probe.error.slice(0, 2000))
        : false;
      if (changed) {
        this.deps.audit.record(tx, {
          action: 'mcpServer.status',
          entityType: 'McpServer',
          entityId: server.id,
          before: { status: before },
          after: { status: server.status, error: server.lastError ?? null },
        });
        await this.publish(tx, server);
      }
      return server;
    });
  }

  /**
   * A secret's value in clear, for code of Steward that starts or configures the server.
   * Never exposed through the API.
   */
  revealSecret(server: Pick<McpServer, 'id' | 'environment'>, name: string): string | null {
    const v = server.environment.find((e) => e.name === name);
    if (!v) return null;
    return v.secret ? this.deps.envelope.decrypt(v.sealed, envContext(server.id, name)) : v.value;
  }

  private publish(tx: Scope, server: McpServer) {
    return this.deps.bus.publish(tx.em, MCP_SERVER_STATUS_CHANGED, {
      mcpServerId: server.id,
      status: server.status,
    } satisfies McpServerEvent);
  }
}

const unique = (list: readonly string[]) => [...new Set(list.map((s) => s.trim()).filter(Boolean))];
