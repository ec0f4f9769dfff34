import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  AddProjectMemberDocument,
  ArchiveProjectDocument,
  AuditEventsWhereDocument,
  ContainerDocument,
  ContainersDocument,
  ContainerStatusChangedDocument,
  CreateContainerDocument,
  CreateServiceTokenDocument,
  CreateWatcherDocument,
  DeleteMcpServerDocument,
  McpServerDocument,
  McpServerHeartbeatDocument,
  McpServersDocument,
  McpServerStatusChangedDocument,
  ProjectContainersDocument,
  RegisterMcpServerDocument,
  ReportContainerStatusDocument,
  ReportWatcherRunDocument,
  SleepContainerDocument,
  StartContainerDocument,
  StopContainerDocument,
  SystemLogsDocument,
  TouchContainerDocument,
  UpdateContainerDocument,
  UpdateMcpServerDocument,
  UpdateWatcherDocument,
  WatcherDocument,
  WatchersDocument,
  type ContainerStatus,
  type CreateContainerInput,
  type ProjectRole,
} from '../generated/graphql.js';
import { codes, gql, ok, subscribe, wsClient } from '../support/client.js';
import { team as makeTeam } from '../support/projects.js';
import { sentinel } from '../support/sentinel.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, unique, type TestUser } from '../support/users.js';
import { busListeners, until } from '../support/wait.js';

/** Service tokens must expire. */
const SOON = new Date(Date.now() + 24 * 3600_000).toISOString();

let s: TestServer;
let admin: TestUser;
/** The container runtime's service token (runtime:docker). */
let runtime: string;
beforeAll(async () => {
  s = await startTestServer({
    env: { CONTAINER_MAX_CPU: '8', CONTAINER_MAX_MEMORY_MB: '16384', MCP_HEARTBEAT_TIMEOUT_SECONDS: '60' },
  });
  admin = await firstAdmin(s);
  runtime = (
    await ok(
      s.url,
      CreateServiceTokenDocument,
      { input: { name: 'docker', serviceActor: 'runtime:docker', expiresAt: SOON, scopes: ['read', 'write'] } },
      admin.token,
    )
  ).createServiceToken.token;
});
afterAll(() => s?.close());

const team = (...roles: ProjectRole[]) => makeTeam(s, admin, roles);
const create = (token: string, input: CreateContainerInput) => gql(s.url, CreateContainerDocument, { input }, token);
const created = async (token: string, input: CreateContainerInput) => {
  const r = await create(token, input);
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.createContainer;
};
const report = (
  id: string,
  status: ContainerStatus,
  extra: { runtimeId?: string; previewUrl?: string; message?: string } = {},
  token = runtime,
) => gql(s.url, ReportContainerStatusDocument, { input: { id, status, ...extra } }, token);
const reported = async (
  id: string,
  status: ContainerStatus,
  extra: { runtimeId?: string; previewUrl?: string; message?: string } = {},
) => {
  const r = await report(id, status, extra);
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.reportContainerStatus;
};
const statusOf = async (id: string) =>
  (
    await s.sql<{ status: string; desired_status: string | null }>(
      `SELECT status, desired_status FROM containers WHERE id = $1`,
      [id],
    )
  )[0];

describe('containers', () => {
  it('lets a contributor create one, CREATING with RUNNING desired, with default limits, audited', async () => {
    const {
      project,
      members: [dev],
    } = await team('CONTRIBUTOR');
    const c = await created(dev!.token, { projectId: project.id });
    expect(c).toMatchObject({
      name: 'dev',
      status: 'CREATING',
      desiredStatus: 'RUNNING',
      cpuLimit: 1,
      memoryLimitMb: 2048,
      project: { id: project.id },
      createdBy: { id: dev!.id },
      desiredBy: { id: dev!.id },
      runtimeId: null,
      lastActiveAt: null,
    });
    const second = await created(dev!.token, {
      projectId: project.id,
      cpuLimit: 2.5,
      memoryLimitMb: 4096,
      image: 'node:20',
    });
    expect(second).toMatchObject({ name: 'dev-2', cpuLimit: 2.5, memoryLimitMb: 4096, image: 'node:20' });
    expect(codes(await create(dev!.token, { projectId: project.id, name: 'dev' }))).toEqual(['CONFLICT']);
    const [audit] = await s.sql(`SELECT action, actor_id, after FROM audit_events WHERE entity_id = $1`, [c.id]);
    expect(audit).toMatchObject({
      action: 'container.create',
      actor_id: dev!.id,
      after: { projectId: project.id, name: 'dev', status: 'CREATING', cpuLimit: 1, memoryLimitMb: 2048 },
    });
    expect(
      (await ok(s.url, ProjectContainersDocument, { id: project.id }, dev!.token)).project!.containers.map(
        (x) => x.name,
      ),
    ).toEqual(['dev', 'dev-2']);
  });

  it('validates CPU and memory limits', async () => {
    const { owner, project } = await team();
    for (const input of [
      { cpuLimit: 0 },
      { cpuLimit: 0.05 },
      { cpuLimit: 8.5 },
      { cpuLimit: 1.234 },
      { cpuLimit: -1 },
      { memoryLimitMb: 32 },
      { memoryLimitMb: 16385 },
      { memoryLimitMb: 0 },
    ]) {
      const r = await create(owner.token, { projectId: project.id, ...input });
      expect(codes(r), JSON.stringify(input)).toEqual(['BAD_USER_INPUT']);
      expect(r.errors![0]!.extensions!.field).toBe(Object.keys(input)[0]);
    }
    const c = await created(owner.token, { projectId: project.id, cpuLimit: 8, memoryLimitMb: 64 });
    expect(
      codes(await gql(s.url, UpdateContainerDocument, { input: { id: c.id, memoryLimitMb: 999999 } }, owner.token)),
    ).toEqual(['BAD_USER_INPUT']);
    const updated = (await ok(s.url, UpdateContainerDocument, { input: { id: c.id, cpuLimit: 0.5 } }, owner.token))
      .updateContainer;
    expect(updated).toMatchObject({ cpuLimit: 0.5, memoryLimitMb: 64 });
  });

  it('lets only contributors and up of an active project create and control containers; others do not see them', async () => {
    const {
      owner,
      project,
      members: [viewer, observer],
    } = await team('VIEWER', 'VIEWER');
    const stranger = await createUser(s, admin);
    const obs = await createUser(s, admin, 'OBSERVER');
    await ok(
      s.url,
      AddProjectMemberDocument,
      { input: { projectId: project.id, userId: obs.id, role: 'VIEWER' } },
      owner.token,
    );
    expect(codes(await create(viewer!.token, { projectId: project.id }))).toEqual(['FORBIDDEN']);
    expect(codes(await create(obs.token, { projectId: project.id }))).toEqual(['FORBIDDEN']);
    expect(codes(await create(stranger.token, { projectId: project.id }))).toEqual(['NOT_FOUND']);
    const c = await created(owner.token, { projectId: project.id });
    expect(codes(await gql(s.url, StopContainerDocument, { id: c.id }, viewer!.token))).toEqual(['FORBIDDEN']);
    expect(codes(await gql(s.url, StopContainerDocument, { id: c.id }, stranger.token))).toEqual(['NOT_FOUND']);
    expect((await ok(s.url, ContainerDocument, { id: c.id }, observer!.token)).container?.id).toBe(c.id);
    expect((await ok(s.url, ContainerDocument, { id: c.id }, stranger.token)).container).toBeNull();
    expect(
      (await ok(s.url, ContainersDocument, { where: { projectId: project.id } }, stranger.token)).containers.totalCount,
    ).toBe(0);
    expect(
      (await ok(s.url, ContainersDocument, { where: { projectId: project.id } }, viewer!.token)).containers.totalCount,
    ).toBe(1);
    // A user cannot speak for the runtime.
    expect(codes(await report(c.id, 'RUNNING', {}, owner.token))).toEqual(['FORBIDDEN']);
    expect(codes(await gql(s.url, TouchContainerDocument, { id: c.id }, owner.token))).toEqual(['FORBIDDEN']);
    // An archived project's containers are read-only for members, but the runtime still reports.
    await ok(s.url, ArchiveProjectDocument, { id: project.id }, owner.token);
    expect(codes(await gql(s.url, StopContainerDocument, { id: c.id }, owner.token))).toEqual(['CONFLICT']);
    expect((await reported(c.id, 'STOPPED')).status).toBe('STOPPED');
  });

  it('follows the runtime through valid moves, and refuses the others with BAD_USER_INPUT', async () => {
    const { owner, project } = await team();
    const c = await created(owner.token, { projectId: project.id });
    for (const bad of ['SLEEPING'] as const) expect(codes(await report(c.id, bad))).toEqual(['BAD_USER_INPUT']);

    const running = await reported(c.id, 'RUNNING', {
      runtimeId: 'docker-abc123',
      previewUrl: 'http://localhost:3001',
    });
    expect(running).toMatchObject({
      status: 'RUNNING',
      desiredStatus: null,
      runtimeId: 'docker-abc123',
      previewUrl: 'http://localhost:3001',
    });
    expect(running.lastActiveAt).toBeTruthy();
    expect(codes(await report(c.id, 'CREATING'))).toEqual(['BAD_USER_INPUT']);

    const path: [ContainerStatus, ContainerStatus[]][] = [
      ['SLEEPING', ['CREATING']],
      ['RUNNING', []],
      ['STOPPED', ['SLEEPING', 'CREATING']],
      ['RUNNING', []],
      ['ERROR', ['SLEEPING']],
      ['CREATING', ['SLEEPING']],
      ['RUNNING', []],
    ];
    for (const [next, refusedAfter] of path) {
      expect((await reported(c.id, next, next === 'ERROR' ? { message: 'OOM killed' } : {})).status).toBe(next);
      for (const bad of refusedAfter) {
        const r = await report(c.id, bad);
        expect(codes(r), `${next} -> ${bad}`).toEqual(['BAD_USER_INPUT']);
        expect(r.errors![0]!.extensions).toMatchObject({ from: next, to: bad });
      }
    }
    expect(await statusOf(c.id)).toEqual({ status: 'RUNNING', desired_status: null });
    // A repeated report is accepted and changes nothing.
    expect((await reported(c.id, 'RUNNING')).status).toBe('RUNNING');

    const audit = await s.sql<{ action: string; actor_label: string; after: { status: string } }>(
      `SELECT action, actor_label, after FROM audit_events WHERE entity_id = $1 AND action = 'container.status' ORDER BY seq NULLS LAST, created_at`,
      [c.id],
    );
    expect(audit.map((a) => a.after.status)).toEqual([
      'RUNNING',
      'SLEEPING',
      'RUNNING',
      'STOPPED',
      'RUNNING',
      'ERROR',
      'CREATING',
      'RUNNING',
    ]);
    expect(new Set(audit.map((a) => a.actor_label))).toEqual(new Set(['runtime:docker']));
  });

  it("records members' start, stop and sleep as the desired status, cleared when the runtime gets there", async () => {
    const {
      project,
      members: [dev],
    } = await team('CONTRIBUTOR');
    const c = await created(dev!.token, { projectId: project.id });
    expect(codes(await gql(s.url, SleepContainerDocument, { id: c.id }, dev!.token))).toEqual(['BAD_USER_INPUT']); // still CREATING
    await reported(c.id, 'RUNNING');

    const asleep = (await ok(s.url, SleepContainerDocument, { id: c.id }, dev!.token)).sleepContainer;
    expect(asleep).toMatchObject({ status: 'RUNNING', desiredStatus: 'SLEEPING', desiredBy: { id: dev!.id } });
    expect(
      (
        await ok(s.url, ContainersDocument, { where: { projectId: project.id, pendingAction: true } }, runtime)
      ).containers.edges.map((e) => e.node.id),
    ).toEqual([c.id]);
    expect((await reported(c.id, 'SLEEPING')).desiredStatus).toBeNull();
    expect(
      (await ok(s.url, ContainersDocument, { where: { projectId: project.id, pendingAction: true } }, runtime))
        .containers.totalCount,
    ).toBe(0);

    expect((await ok(s.url, StartContainerDocument, { id: c.id }, dev!.token)).startContainer).toMatchObject({
      status: 'SLEEPING',
      desiredStatus: 'RUNNING',
    });
    expect((await ok(s.url, StopContainerDocument, { id: c.id }, dev!.token)).stopContainer).toMatchObject({
      status: 'SLEEPING',
      desiredStatus: 'STOPPED',
    });
    await reported(c.id, 'STOPPED');
    expect(await statusOf(c.id)).toEqual({ status: 'STOPPED', desired_status: null });
    expect(codes(await gql(s.url, SleepContainerDocument, { id: c.id }, dev!.token))).toEqual(['BAD_USER_INPUT']); // a stopped container does not sleep
    const actions = await s.sql<{ action: string }>(
      `SELECT action FROM audit_events WHERE entity_id = $1 AND actor_id = $2 ORDER BY created_at`,
      [c.id, dev!.id],
    );
    expect(actions.map((a) => a.action)).toEqual([
      'container.create',
      'container.sleep',
      'container.start',
      'container.stop',
    ]);
  });

  it('puts RUNNING containers idle for CONTAINER_IDLE_MINUTES to sleep with a job, and spares active ones', async () => {
    const { owner, project } = await team();
    const idle = await created(owner.token, { projectId: project.id });
    const busy = await created(owner.token, { projectId: project.id });
    const stopped = await created(owner.token, { projectId: project.id });
    for (const c of [idle, busy, stopped]) await reported(c.id, 'RUNNING');
    await ok(s.url, StopContainerDocument, { id: stopped.id }, owner.token);
    await reported(stopped.id, 'STOPPED');
    await s.sql(
      `UPDATE containers SET last_active_at = now() - interval '31 minutes', status_changed_at = now() - interval '40 minutes' WHERE id = ANY($1)`,
      [[idle.id, busy.id, stopped.id]],
    );
    const touched = (await ok(s.url, TouchContainerDocument, { id: busy.id }, runtime)).touchContainer;
    expect(Date.now() - Date.parse(touched.lastActiveAt!)).toBeLessThan(60_000);

    const run = await s.app.runtime.scheduler.runNow('infrastructure.sleepIdleContainers');
    expect(run.ran).toBe(true);
    expect(await statusOf(idle.id)).toEqual({ status: 'SLEEPING', desired_status: 'SLEEPING' });
    expect(await statusOf(busy.id)).toEqual({ status: 'RUNNING', desired_status: null });
    expect(await statusOf(stopped.id)).toEqual({ status: 'STOPPED', desired_status: null });
    const [audit] = await s.sql(
      `SELECT actor_id, actor_label, after FROM audit_events WHERE entity_id = $1 AND action = 'container.sleepIdle'`,
      [idle.id],
    );
    expect(audit).toMatchObject({
      actor_id: null,
      actor_label: 'job:infrastructure.sleepIdleContainers',
      after: { status: 'SLEEPING' },
    });
    // The runtime pauses it and says so: the desired status is reached.
    await reported(idle.id, 'SLEEPING');
    expect(await statusOf(idle.id)).toEqual({ status: 'SLEEPING', desired_status: null });
  });

  it("tells the project's members of status changes, and no one else", async () => {
    const {
      owner,
      project,
      members: [viewer],
    } = await team('VIEWER');
    const other = await team();
    const stranger = await createUser(s, admin);
    const listeners = busListeners(s);
    const clients = [owner, viewer!, stranger, admin, other.owner].map((u) => wsClient(s.wsUrl, u.token));
    const [ownerAll, viewerScoped, strangerAll, adminAll, otherAll] = [
      subscribe(clients[0]!, ContainerStatusChangedDocument, {}),
      subscribe(clients[1]!, ContainerStatusChangedDocument, { projectId: project.id }),
      subscribe(clients[2]!, ContainerStatusChangedDocument, {}),
      subscribe(clients[3]!, ContainerStatusChangedDocument, { projectId: project.id }),
      subscribe(clients[4]!, ContainerStatusChangedDocument, {}),
    ];
    const runtimeClient = wsClient(s.wsUrl, runtime);
    const runtimeAll = subscribe(runtimeClient, ContainerStatusChangedDocument, {});
    try {
      await listeners.registered(6);
      const c = await created(owner.token, { projectId: project.id });
      for (const sub of [ownerAll, viewerScoped, adminAll, runtimeAll])
        expect(await sub.next()).toEqual({
          containerStatusChanged: {
            id: c.id,
            status: 'CREATING',
            desiredStatus: 'RUNNING',
            project: { id: project.id },
          },
        });
      await reported(c.id, 'RUNNING');
      for (const sub of [ownerAll, viewerScoped, adminAll])
        expect((await sub.next()).containerStatusChanged).toMatchObject({
          id: c.id,
          status: 'RUNNING',
          desiredStatus: null,
        });
      // Another project's container reaches its own members only.
      const theirs = await created(other.owner.token, { projectId: other.project.id });
      expect((await otherAll.next()).containerStatusChanged.id).toBe(theirs.id);
      // Sentinels: this project's next change must be the next event of its owner and viewer (not
      // the other project's), and the stranger's own sentinel must find nothing before it.
      await reported(c.id, 'STOPPED');
      for (const sub of [ownerAll, viewerScoped])
        expect((await sub.next()).containerStatusChanged).toMatchObject({ id: c.id, status: 'STOPPED' });
      await sentinel(s, clients[2]!, stranger);
      expect(strangerAll.received).toEqual([]);
    } finally {
      for (const sub of [ownerAll, viewerScoped, strangerAll, adminAll, otherAll, runtimeAll]) sub.dispose();
      await Promise.all([...clients, runtimeClient].map((c) => c.dispose()));
    }
  });
});

describe('MCP servers', () => {
  const register = (token: string, name = unique('mcp-')) =>
    gql(
      s.url,
      RegisterMcpServerDocument,
      {
        input: {
          name,
          serverType: 'email',
          command: 'npx',
          args: ['-y', '@acme/mcp-email'],
          capabilities: ['send', 'search'],
          environment: [
            { name: 'SMTP_HOST', value: 'smtp.example.test' },
            { name: 'SMTP_PASSWORD', value: 'p4ssw0rd-super-secret-9876', secret: true },
            { name: 'PIN', value: '1234', secret: true },
          ],
        },
      },
      token,
    );

  it('registers servers for admins, with secret environment values encrypted and never shown', async () => {
    const u = await createUser(s, admin);
    expect(codes(await register(u.token))).toEqual(['FORBIDDEN']);
    expect(codes(await register(runtime))).toEqual(['FORBIDDEN']);
    const name = unique('mcp-');
    const server = (await register(admin.token, name)).data!.registerMcpServer;
    expect(server).toMatchObject({
      name,
      status: 'INACTIVE',
      isActive: true,
      args: ['-y', '@acme/mcp-email'],
      capabilities: ['send', 'search'],
      lastHeartbeatAt: null,
    });
    expect(server.environment).toEqual([
      { name: 'SMTP_HOST', secret: false, value: 'smtp.example.test', last4: null },
      { name: 'SMTP_PASSWORD', secret: true, value: null, last4: '9876' },
      { name: 'PIN', secret: true, value: null, last4: null },
    ]);
    expect(codes(await register(admin.token, name))).toEqual(['CONFLICT']);

    // Nowhere in clear: not in the row, not in the audit trail; yet it opens with the master key.
    const [row] = await s.sql<{ environment: unknown; text: string }>(
      `SELECT environment, row_to_json(m)::text AS text FROM mcp_servers m WHERE id = $1`,
      [server.id],
    );
    expect(row!.text).not.toContain('p4ssw0rd');
    const audit = await s.sql<{ text: string }>(
      `SELECT row_to_json(a)::text AS text FROM audit_events a WHERE entity_id = $1`,
      [server.id],
    );
    expect(audit.length).toBe(1);
    expect(audit[0]!.text).not.toContain('p4ssw0rd');
    const mcp = s.app.runtime.services.mcpServers;
    const stored = { id: server.id, environment: row!.environment as never };
    expect(mcp.revealSecret(stored, 'SMTP_PASSWORD')).toBe('p4ssw0rd-super-secret-9876');
    // Bound to its server: the same sealed value under another server's id does not open.
    expect(() => mcp.revealSecret({ ...stored, id: u.id }, 'SMTP_PASSWORD')).toThrow();

    // An update that names a secret without a value keeps it.
    const updated = (
      await ok(
        s.url,
        UpdateMcpServerDocument,
        {
          input: {
            id: server.id,
            command: 'node',
            environment: [
              { name: 'SMTP_PASSWORD', secret: true },
              { name: 'DEBUG', value: '1' },
            ],
          },
        },
        admin.token,
      )
    ).updateMcpServer;
    expect(updated.environment).toEqual([
      { name: 'SMTP_PASSWORD', secret: true, value: null, last4: '9876' },
      { name: 'DEBUG', secret: false, value: '1', last4: null },
    ]);
    const [after] = await s.sql<{ environment: never }>(`SELECT environment FROM mcp_servers WHERE id = $1`, [
      server.id,
    ]);
    expect(mcp.revealSecret({ id: server.id, environment: after!.environment }, 'SMTP_PASSWORD')).toBe(
      'p4ssw0rd-super-secret-9876',
    );
    expect(
      codes(
        await gql(
          s.url,
          UpdateMcpServerDocument,
          { input: { id: server.id, environment: [{ name: 'NEW_SECRET', secret: true }] } },
          admin.token,
        ),
      ),
    ).toEqual(['BAD_USER_INPUT']);
    expect(
      codes(
        await gql(
          s.url,
          UpdateMcpServerDocument,
          { input: { id: server.id, environment: [{ name: '1BAD', value: 'x' }] } },
          admin.token,
        ),
      ),
    ).toEqual(['BAD_USER_INPUT']);
    expect(
      (
        await ok(s.url, McpServersDocument, { first: 50, where: { status: ['INACTIVE'] } }, runtime)
      ).mcpServers.edges.map((e) => e.node.id),
    ).toContain(server.id);
    expect(codes(await gql(s.url, McpServersDocument, { first: 5 }, u.token))).toEqual(['FORBIDDEN']);
    expect(await ok(s.url, DeleteMcpServerDocument, { id: server.id }, admin.token)).toEqual({ deleteMcpServer: true });
    expect((await ok(s.url, McpServerDocument, { id: server.id }, admin.token)).mcpServer).toBeNull();
  });

  it('goes ACTIVE on heartbeats, ERROR on a reported failure or when heartbeats stop, telling admins', async () => {
    const server = (await register(admin.token)).data!.registerMcpServer;
    const listeners = busListeners(s);
    const client = wsClient(s.wsUrl, admin.token);
    const events = subscribe(client, McpServerStatusChangedDocument, { id: server.id });
    const u = await createUser(s, admin);
    const userClient = wsClient(s.wsUrl, u.token);
    const refused = subscribe(userClient, McpServerStatusChangedDocument, {});
    try {
      expect(await refused.ended).toEqual([
        expect.objectContaining({ extensions: expect.objectContaining({ code: 'FORBIDDEN' }) }),
      ]);
      await listeners.registered(1);
      expect(codes(await gql(s.url, McpServerHeartbeatDocument, { input: { id: server.id } }, u.token))).toEqual([
        'FORBIDDEN',
      ]);
      const beat = (
        await ok(
          s.url,
          McpServerHeartbeatDocument,
          { input: { id: server.id, capabilities: ['send', 'search', 'archive'] } },
          runtime,
        )
      ).mcpServerHeartbeat;
      expect(beat).toMatchObject({ status: 'ACTIVE', capabilities: ['send', 'search', 'archive'], lastError: null });
      expect((await events.next()).mcpServerStatusChanged).toMatchObject({ id: server.id, status: 'ACTIVE' });

      // Heartbeats stop: after MCP_HEARTBEAT_TIMEOUT_SECONDS the job marks it ERROR, and says so in the system logs.
      await s.sql(`UPDATE mcp_servers SET last_heartbeat_at = now() - interval '61 seconds' WHERE id = $1`, [
        server.id,
      ]);
      expect((await s.app.runtime.scheduler.runNow('infrastructure.mcpHeartbeats')).ran).toBe(true);
      expect((await events.next()).mcpServerStatusChanged).toMatchObject({
        id: server.id,
        status: 'ERROR',
        lastError: 'no heartbeat for 60 s',
      });
      const [audit] = await s.sql(
        `SELECT actor_label, before, after FROM audit_events WHERE entity_id = $1 AND action = 'mcpServer.heartbeatTimeout'`,
        [server.id],
      );
      expect(audit).toMatchObject({
        actor_label: 'job:infrastructure.mcpHeartbeats',
        before: { status: 'ACTIVE' },
        after: { status: 'ERROR' },
      });
      await until(
        async () =>
          (
            await ok(
              s.url,
              SystemLogsDocument,
              { first: 5, where: { module: 'infrastructure', search: server.name } },
              admin.token,
            )
          ).systemLogs.totalCount === 1,
        'the warning in the system logs',
      );

      // It comes back, then reports a failure of its own, then recovers.
      expect(
        (await ok(s.url, McpServerHeartbeatDocument, { input: { id: server.id } }, runtime)).mcpServerHeartbeat.status,
      ).toBe('ACTIVE');
      expect((await events.next()).mcpServerStatusChanged.status).toBe('ACTIVE');
      const failed = (
        await ok(
          s.url,
          McpServerHeartbeatDocument,
          { input: { id: server.id, ok: false, error: 'IMAP login refused' } },
          runtime,
        )
      ).mcpServerHeartbeat;
      expect(failed).toMatchObject({ status: 'ERROR', lastError: 'IMAP login refused' });
      expect((await events.next()).mcpServerStatusChanged.status).toBe('ERROR');
      expect(
        (await ok(s.url, McpServerHeartbeatDocument, { input: { id: server.id } }, runtime)).mcpServerHeartbeat,
      ).toMatchObject({ status: 'ACTIVE', lastError: null });
      await events.next();
      // A repeated heartbeat changes no status: no event, no audit entry.
      const audited = async () => (await s.sql(`SELECT 1 FROM audit_events WHERE entity_id = $1`, [server.id])).length;
      const n = await audited();
      await ok(s.url, McpServerHeartbeatDocument, { input: { id: server.id } }, runtime);
      expect(await audited()).toBe(n);
      // The sentinel: a real change after it must be the very next event.
      await ok(s.url, McpServerHeartbeatDocument, { input: { id: server.id, ok: false, error: 'again' } }, runtime);
      expect((await events.next()).mcpServerStatusChanged).toMatchObject({ status: 'ERROR', lastError: 'again' });
    } finally {
      events.dispose();
      refused.dispose();
      await Promise.all([client.dispose(), userClient.dispose()]);
    }
  });

  it('never marks a disabled server ERROR', async () => {
    const server = (await register(admin.token)).data!.registerMcpServer;
    await ok(s.url, McpServerHeartbeatDocument, { input: { id: server.id } }, runtime);
    const disabled = (
      await ok(s.url, UpdateMcpServerDocument, { input: { id: server.id, isActive: false } }, admin.token)
    ).updateMcpServer;
    expect(disabled).toMatchObject({ isActive: false, status: 'INACTIVE' });
    await s.sql(`UPDATE mcp_servers SET last_heartbeat_at = now() - interval '1 hour' WHERE id = $1`, [server.id]);
    await s.app.runtime.scheduler.runNow('infrastructure.mcpHeartbeats');
    expect((await ok(s.url, McpServerDocument, { id: server.id }, admin.token)).mcpServer!.status).toBe('INACTIVE');
    // A heartbeat of a disabled server is noted but does not make it ACTIVE.
    const beat = (await ok(s.url, McpServerHeartbeatDocument, { input: { id: server.id } }, runtime))
      .mcpServerHeartbeat;
    expect(beat.status).toBe('INACTIVE');
    expect(Date.now() - Date.parse(beat.lastHeartbeatAt!)).toBeLessThan(60_000);
  });
});

describe('watchers', () => {
  it('keeps the last run, the last error and the error counts from the runs the watcher reports', async () => {
    const u = await createUser(s, admin);
    const input = { name: unique('gmail-'), watcherType: 'gmail', config: { label: 'INBOX', everyMinutes: 5 } };
    expect(codes(await gql(s.url, CreateWatcherDocument, { input }, u.token))).toEqual(['FORBIDDEN']);
    const w = (await ok(s.url, CreateWatcherDocument, { input }, admin.token)).createWatcher;
    expect(w).toMatchObject({
      watcherType: 'gmail',
      config: { label: 'INBOX', everyMinutes: 5 },
      isActive: true,
      runCount: 0,
      errorCount: 0,
      lastRunAt: null,
    });

    const run = (ok_: boolean, error?: string, itemsProcessed?: number, token = runtime) =>
      gql(
        s.url,
        ReportWatcherRunDocument,
        { input: { watcherId: w.id, ok: ok_, error, itemsProcessed, durationMs: 1200 } },
        token,
      );
    expect(codes(await run(true, undefined, 1, u.token))).toEqual(['FORBIDDEN']);
    expect((await run(true, undefined, 3)).data!.reportWatcherRun).toMatchObject({
      ok: true,
      itemsProcessed: 3,
      reportedBy: 'runtime:docker',
      watcher: { runCount: 1, errorCount: 0 },
    });
    await run(false, 'token expired');
    const second = (await run(false, 'rate limited')).data!.reportWatcherRun.watcher;
    expect(second).toMatchObject({ runCount: 3, errorCount: 2, consecutiveErrors: 2, lastError: 'rate limited' });
    expect(
      (await ok(s.url, WatchersDocument, { first: 50, where: { failing: true } }, admin.token)).watchers.edges.map(
        (e) => e.node.id,
      ),
    ).toContain(w.id);
    const last = (await run(true, undefined, 0)).data!.reportWatcherRun.watcher;
    expect(last).toMatchObject({ runCount: 4, errorCount: 2, consecutiveErrors: 0, lastError: 'rate limited' });
    expect(Date.parse(last.lastSuccessAt!)).toBeGreaterThanOrEqual(Date.parse(last.lastErrorAt!));

    const read = (await ok(s.url, WatcherDocument, { id: w.id, runs: 3 }, runtime)).watcher!;
    expect(read.runs.totalCount).toBe(4);
    expect(read.runs.edges.map((e) => [e.node.ok, e.node.error])).toEqual([
      [true, null],
      [false, 'rate limited'],
      [false, 'token expired'],
    ]);
    const audit = await s.sql<{ outcome: string }>(
      `SELECT outcome FROM audit_events WHERE entity_id = $1 AND action = 'watcher.run' ORDER BY created_at`,
      [w.id],
    );
    expect(audit.map((a) => a.outcome)).toEqual(['SUCCESS', 'FAILURE', 'FAILURE', 'SUCCESS']);

    const off = (
      await ok(
        s.url,
        UpdateWatcherDocument,
        { input: { id: w.id, isActive: false, config: { label: 'ARCHIVE' } } },
        admin.token,
      )
    ).updateWatcher;
    expect(off).toMatchObject({ isActive: false, config: { label: 'ARCHIVE' } });
    expect(
      (await ok(s.url, WatchersDocument, { first: 50, where: { isActive: false } }, admin.token)).watchers.edges.map(
        (e) => e.node.id,
      ),
    ).toContain(w.id);
  });
});

describe('the audit trail of infrastructure changes', () => {
  it("shows a runtime's reports as actions of its service actor", async () => {
    const { owner, project } = await team();
    const c = await created(owner.token, { projectId: project.id });
    await reported(c.id, 'RUNNING');
    const events = (
      await ok(
        s.url,
        AuditEventsWhereDocument,
        { first: 10, where: { entityType: 'Container', entityId: c.id } },
        admin.token,
      )
    ).auditEvents.edges.map((e) => e.node);
    expect(events.map((e) => [e.action, e.actorLabel])).toEqual([
      ['container.status', 'runtime:docker'],
      ['container.create', `user:${owner.id}`],
    ]);
  });
});
