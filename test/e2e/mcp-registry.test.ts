import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { CreateServiceTokenDocument, McpServerStatusChangedDocument } from '../generated/graphql.js';
import { codes, gql, ok, subscribe, wsClient } from '../support/client.js';
import { RemoteMcpServer } from '../support/remote-mcp.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, unique, type TestUser } from '../support/users.js';
import { busListeners } from '../support/wait.js';

let s: TestServer;
let admin: TestUser;
const remote = new RemoteMcpServer('remote-secret-0123456789');
beforeAll(async () => {
  s = await startTestServer({ env: { MCP_HEARTBEAT_TIMEOUT_SECONDS: '60' } });
  admin = await firstAdmin(s);
  await remote.start();
});
afterAll(async () => {
  await remote.stop();
  await s?.close();
});

const SERVER_FIELDS = `id name status url command capabilities lastHeartbeatAt lastError headers { name secret value last4 } tools { name title description inputSchema outputSchema }`;
const REGISTER = `mutation($input: RegisterMcpServerInput!) { registerMcpServer(input: $input) { ${SERVER_FIELDS} } }`;
const REFRESH = `mutation($id: ID!) { refreshMcpServer(id: $id) { ${SERVER_FIELDS} } }`;
const SERVER = `query($id: ID!) { mcpServer(id: $id) { ${SERVER_FIELDS} } }`;

const register = (input: Record<string, unknown>, token = admin.token) => gql(s.url, REGISTER, { input }, token);
const heartbeat = () => s.app.runtime.scheduler.runNow('mcp.heartbeat');

describe('remote MCP servers in the registry', () => {
  it('registers a server by url with a secret header, reaches it, and keeps its real tools: ACTIVE', async () => {
    const r = await register({
      name: unique('tools-'),
      serverType: 'tools',
      url: remote.url,
      headers: [{ name: 'Authorization', value: `Bearer ${remote.secret}`, secret: true }],
    });
    expect(r.errors).toBeUndefined();
    const registered = r.data.registerMcpServer;
    expect(registered).toMatchObject({
      status: 'INACTIVE',
      url: remote.url,
      command: null,
      capabilities: [],
      tools: [],
    });
    expect(registered.headers).toEqual([
      { name: 'Authorization', secret: true, value: null, last4: remote.secret.slice(-4) },
    ]);
    const [row] = await s.sql<{ headers: unknown }>(`SELECT headers FROM mcp_servers WHERE id = $1`, [registered.id]);
    expect(JSON.stringify(row!.headers)).not.toContain(remote.secret);

    const refreshed = (await ok(s.url, REFRESH, { id: registered.id }, admin.token)).refreshMcpServer;
    expect(refreshed).toMatchObject({ status: 'ACTIVE', lastError: null, capabilities: ['count', 'echo'] });
    expect(refreshed.lastHeartbeatAt).toBeTruthy();
    expect(refreshed.tools.map((t: { name: string }) => t.name)).toEqual(['count', 'echo']);
    const count = refreshed.tools[0];
    expect(count).toMatchObject({
      title: 'Count a call',
      description: 'Counts its calls and says how many it has served.',
    });
    expect(count.inputSchema).toMatchObject({
      type: 'object',
      properties: { label: { type: 'string' } },
      required: ['label'],
    });
    expect(count.outputSchema).toMatchObject({ type: 'object', properties: { served: { type: 'number' } } });
    expect(remote.unauthorized).toBe(0);
    await gql(s.url, `mutation($id: ID!) { deleteMcpServer(id: $id) }`, { id: registered.id }, admin.token);
  });

  it('marks a server that goes away ERROR with the reason on the heartbeat, pushed live, and ACTIVE again when it is back', async () => {
    const registered = (
      await register({
        name: unique('flaky-'),
        serverType: 'tools',
        url: remote.url,
        headers: [{ name: 'Authorization', value: `Bearer ${remote.secret}`, secret: true }],
      })
    ).data.registerMcpServer;
    const runtimeToken = (
      await ok(
        s.url,
        CreateServiceTokenDocument,
        {
          input: {
            name: 'supervisor',
            serviceActor: 'runtime:mcp',
            expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
            scopes: ['read', 'write'],
          },
        },
        admin.token,
      )
    ).createServiceToken.token;
    const ws = wsClient(s.wsUrl, runtimeToken);
    const listening = busListeners(s);
    const changes = subscribe(ws, McpServerStatusChangedDocument, { id: registered.id });
    await listening.registered();

    expect((await heartbeat()).ran).toBe(true);
    expect((await changes.next()).mcpServerStatusChanged).toMatchObject({ id: registered.id, status: 'ACTIVE' });
    const firstBeat = (await ok(s.url, SERVER, { id: registered.id }, admin.token)).mcpServer.lastHeartbeatAt;

    await remote.stop();
    await heartbeat();
    expect((await changes.next()).mcpServerStatusChanged).toMatchObject({ id: registered.id, status: 'ERROR' });
    const down = (await ok(s.url, SERVER, { id: registered.id }, admin.token)).mcpServer;
    expect(down.status).toBe('ERROR');
    expect(down.lastError).toMatch(/ECONNREFUSED/);
    expect(down.lastHeartbeatAt).toBe(firstBeat);
    expect(down.capabilities).toEqual(['count', 'echo']); // what it offered when last reached

    await remote.start();
    await heartbeat();
    expect((await changes.next()).mcpServerStatusChanged).toMatchObject({ id: registered.id, status: 'ACTIVE' });
    const back = (await ok(s.url, SERVER, { id: registered.id }, admin.token)).mcpServer;
    expect(back).toMatchObject({ status: 'ACTIVE', lastError: null });
    expect(new Date(back.lastHeartbeatAt).getTime()).toBeGreaterThan(new Date(firstBeat).getTime());
    const audit = await s.sql<{ after: { status: string } }>(
      `SELECT after FROM audit_events WHERE entity_id = $1 AND action = 'mcpServer.status' ORDER BY created_at`,
      [registered.id],
    );
    expect(audit.map((a) => a.after.status)).toEqual(['ACTIVE', 'ERROR', 'ACTIVE']);
    changes.dispose();
    await ws.dispose();
    await gql(s.url, `mutation($id: ID!) { deleteMcpServer(id: $id) }`, { id: registered.id }, admin.token);
  });

  it('says ERROR with the reason when the server refuses Steward (wrong header)', async () => {
    const registered = (
      await register({
        name: unique('locked-'),
        serverType: 'tools',
        url: remote.url,
        headers: [{ name: 'Authorization', value: 'Bearer wrong-secret', secret: true }],
      })
    ).data.registerMcpServer;
    const refused = remote.unauthorized;
    const r = (await ok(s.url, REFRESH, { id: registered.id }, admin.token)).refreshMcpServer;
    expect(r.status).toBe('ERROR');
    expect(r.lastError).toMatch(/^HTTP 401: /);
    expect(remote.unauthorized).toBeGreaterThan(refused);
    await gql(s.url, `mutation($id: ID!) { deleteMcpServer(id: $id) }`, { id: registered.id }, admin.token);
  });

  it('validates registrations and keeps the registry for admins', async () => {
    expect(codes(await register({ name: unique('x-'), serverType: 'tools' }))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await register({ name: unique('x-'), serverType: 'tools', url: 'ftp://example.com/mcp' }))).toEqual([
      'BAD_USER_INPUT',
    ]);
    expect(
      codes(
        await register({
          name: unique('x-'),
          serverType: 'tools',
          url: remote.url,
          headers: [{ name: 'Bad Header', value: 'x' }],
        }),
      ),
    ).toEqual(['BAD_USER_INPUT']);
    const user = await createUser(s, admin);
    expect(codes(await register({ name: unique('x-'), serverType: 'tools', url: remote.url }, user.token))).toEqual([
      'FORBIDDEN',
    ]);
    const local = (await register({ name: unique('local-'), serverType: 'fs', command: 'npx', args: ['mcp-fs'] })).data
      .registerMcpServer;
    expect(codes(await gql(s.url, REFRESH, { id: local.id }, admin.token))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await gql(s.url, REFRESH, { id: local.id }, user.token))).toEqual(['FORBIDDEN']);
  });
});
