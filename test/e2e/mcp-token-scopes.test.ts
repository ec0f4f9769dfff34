import { createHash, randomBytes } from 'node:crypto';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { codes, gql, ok } from '../support/client.js';
import { mcpClient } from '../support/mcp.js';
import { team as makeTeam } from '../support/projects.js';
import { RemoteMcpServer } from '../support/remote-mcp.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { firstAdmin, unique, type TestUser } from '../support/users.js';

/**
 * A scoped service token on Steward's /mcp, over real HTTP with the MCP SDK's client: it
 * gets in only with the `mcp` scope (and only for its projects), and every tool it calls
 * then obeys its other scopes exactly as the GraphQL operation behind the tool would.
 */
let s: TestServer;
let admin: TestUser;
let serverName: string;
const remote = new RemoteMcpServer('scopes-remote-secret-0123456789');
const clients: Client[] = [];

beforeAll(async () => {
  s = await startTestServer();
  admin = await firstAdmin(s);
  await remote.start();
  serverName = unique('scoped-');
  const id = (
    await ok(
      s.url,
      `mutation($input: RegisterMcpServerInput!) { registerMcpServer(input: $input) { id } }`,
      {
        input: {
          name: serverName,
          serverType: 'tools',
          url: remote.url,
          headers: [{ name: 'Authorization', value: `Bearer ${remote.secret}`, secret: true }],
        },
      },
      admin.token,
    )
  ).registerMcpServer.id;
  await ok(s.url, `mutation($id: ID!) { refreshMcpServer(id: $id) { status } }`, { id }, admin.token);
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await remote.stop();
  await s?.close();
});

/**
 * A service token; without scopes, one from before scopes were required (they can no longer be
 * created, and those that exist keep their reach), stored as it was then.
 */
const serviceToken = async (input: { scopes?: string[]; projectIds?: string[] }) =>
  input.scopes ? scopedServiceToken(input) : legacyServiceToken();

async function legacyServiceToken(): Promise<string> {
  const token = `stw_${randomBytes(32).toString('base64url')}`;
  await s.sql(
    `INSERT INTO api_tokens (id, user_id, name, prefix, token_hash, scopes, service_actor, expires_at)
     VALUES (gen_random_uuid(), $1, $2, $3, $4, '{}', 'agent:release-bot', now() + interval '1 day')`,
    [admin.id, unique('mcp-legacy-'), token.slice(0, 12), createHash('sha256').update(token).digest('hex')],
  );
  return token;
}

const scopedServiceToken = async (input: { scopes?: string[]; projectIds?: string[] }) =>
  (
    await ok(
      s.url,
      `mutation($i: CreateServiceTokenInput!) { createServiceToken(input: $i) { token } }`,
      {
        i: {
          name: unique('mcp-svc-'),
          serviceActor: 'agent:release-bot',
          expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
          ...input,
        },
      },
      admin.token,
    )
  ).createServiceToken.token as string;
const connect = async (token: string, project?: string) => {
  const c = await mcpClient(s, token, project);
  clients.push(c);
  return c;
};
type Result = { isError?: boolean; structuredContent?: Record<string, any>; content: { type: string; text: string }[] };
const call = async (c: Client, name: string, args: Record<string, unknown>) =>
  (await c.callTool({ name, arguments: args })) as Result;
/** The code a failed tool call names (`FORBIDDEN: …`), or null when it succeeded. */
const codeOf = (r: Result) => (r.isError ? r.content[0]!.text.split(':')[0] : null);
const initialize = (token: string, project?: string) =>
  fetch(`${s.app.url}/mcp`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: `Bearer ${token}`,
      ...(project ? { 'x-steward-project': project } : {}),
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
    }),
  });

describe('a scoped service token on /mcp', () => {
  it('gets in only with the mcp scope', async () => {
    for (const scopes of [['work'], ['read', 'write'], ['ai']]) {
      const token = await serviceToken({ scopes });
      const res = await initialize(token);
      expect(res.status, scopes.join()).toBe(403);
      expect(await res.json()).toEqual({
        jsonrpc: '2.0',
        id: null,
        error: { code: -32001, message: `FORBIDDEN: This API token's scopes do not allow "mcp"` },
      });
      await expect(mcpClient(s, token), scopes.join()).rejects.toThrow();
    }
    for (const scopes of [['mcp'], ['mcp', 'work'], undefined]) {
      const c = await connect(await serviceToken(scopes ? { scopes } : {}));
      expect((await c.listTools()).tools.map((t) => t.name)).toContain('request_approval');
    }
  });

  it("its tools obey its other scopes: without them every Steward tool is refused, with them the operation's own rules apply", async () => {
    const { project, task } = await makeTeam(s, admin, []);
    const mcpOnly = await connect(await serviceToken({ scopes: ['mcp'] }));
    const withWorkToken = await serviceToken({ scopes: ['mcp', 'work'] });
    const withWork = await connect(withWorkToken);
    const everything = await connect(await serviceToken({}));

    // mcp alone: in, but none of the operations behind the tools.
    for (const [name, args] of [
      ['request_approval', { actionType: 'deploy', taskId: task.id }],
      ['list_tasks', { projectId: project.id }],
      ['update_task_status', { taskId: task.id, status: 'CANCELLED' }],
      ['search_knowledge', { query: 'anything' }],
      ['notify', { title: 'hello' }],
    ] as const)
      expect(codeOf(await call(mcpOnly, name, args)), name).toBe('FORBIDDEN');
    const [pending] = await s.sql<{ n: string }>(
      `SELECT count(*) AS n FROM approvals WHERE task_id = $1 AND action_type = 'deploy'`,
      [task.id],
    );
    expect(Number(pending!.n)).toBe(0);

    // mcp + work: the work operations run (as the token's actor), the others are still refused.
    const asked = await call(withWork, 'request_approval', { actionType: 'deploy', taskId: task.id });
    expect(codeOf(asked)).toBeNull();
    expect(asked.structuredContent).toMatchObject({ status: 'PENDING' });
    const [approval] = await s.sql<{ requested_by_actor: string; status: string }>(
      `SELECT requested_by_actor, status FROM approvals WHERE id = $1`,
      [asked.structuredContent!.approvalId],
    );
    expect(approval).toEqual({ requested_by_actor: 'agent:release-bot', status: 'PENDING' });
    const moved = await call(withWork, 'update_task_status', { taskId: task.id, status: 'CANCELLED' });
    expect(codeOf(moved), moved.content[0]?.text).toBeNull();
    expect((await s.sql<{ status: string }>(`SELECT status FROM tasks WHERE id = $1`, [task.id]))[0]!.status).toBe(
      'CANCELLED',
    );
    // A tool answers exactly as its operation does for the same token: `tasks` takes no service token, over GraphQL either.
    const listed = await call(withWork, 'list_tasks', { projectId: project.id });
    expect(listed.content[0]!.text).toBe('FORBIDDEN: Service tokens may not run this operation');
    expect(codes(await gql(s.url, `{ tasks { totalCount } }`, {}, withWorkToken))).toEqual(['FORBIDDEN']);
    expect(codeOf(await call(withWork, 'notify', { title: 'work done' }))).toBeNull();
    const search = await call(withWork, 'search_knowledge', { query: 'anything' });
    expect(search.content[0]!.text).toMatch(
      /^FORBIDDEN: This API token's scopes \(mcp, work\) do not allow searchKnowledge/,
    );

    // No scopes at all: everything its user may do (and the notification is there).
    const told = await call(everything, 'notify', { title: 'all scopes' });
    expect(codeOf(told)).toBeNull();
    expect(
      (await s.sql(`SELECT 1 FROM notifications WHERE id = $1`, [told.structuredContent!.notificationId])).length,
    ).toBe(1);
  });

  it('a token bound to some projects reaches /mcp and their tasks only for those projects', async () => {
    const mine = await makeTeam(s, admin, []);
    const other = await makeTeam(s, admin, []);
    const token = await serviceToken({ scopes: ['mcp', 'work'], projectIds: [mine.project.id] });
    expect((await initialize(token, other.project.id)).status).toBe(403);
    expect((await initialize(token, mine.project.id)).status).toBe(200);

    const c = await connect(token);
    expect(codeOf(await call(c, 'request_approval', { actionType: 'deploy', taskId: mine.task.id }))).toBeNull();
    expect(codeOf(await call(c, 'request_approval', { actionType: 'deploy', taskId: other.task.id }))).toMatch(
      /^(NOT_FOUND|FORBIDDEN)$/,
    );
    expect(codeOf(await call(c, 'update_task_status', { taskId: other.task.id, status: 'CANCELLED' }))).toMatch(
      /^(NOT_FOUND|FORBIDDEN)$/,
    );
    const [task] = await s.sql<{ status: string }>(`SELECT status FROM tasks WHERE id = $1`, [other.task.id]);
    expect(task!.status).toBe('PENDING');
  });

  it("reaches a registered server's tools only with the mcp scope, and only in its projects", async () => {
    const { owner, project } = await makeTeam(s, admin, []);
    const other = await makeTeam(s, admin, []);
    const serverId = (await s.sql<{ id: string }>(`SELECT id FROM mcp_servers WHERE name = $1`, [serverName]))[0]!.id;
    for (const p of [project, other.project])
      await ok(
        s.url,
        `mutation($input: AllowMcpToolInput!) { allowMcpTool(input: $input) { id } }`,
        { input: { serverId, projectId: p.id, tool: 'count' } },
        p.id === project.id ? owner.token : other.owner.token,
      );
    const name = `${serverName}__count`;
    const served = remote.calls.length;

    const bound = await serviceToken({ scopes: ['mcp'], projectIds: [project.id] });
    const c = await connect(bound, project.id);
    expect((await c.listTools()).tools.map((t) => t.name)).toContain(name);
    const r = await call(c, name, { label: 'scoped' });
    expect(codeOf(r)).toBeNull();
    expect(remote.calls.slice(served)).toEqual([{ label: 'scoped' }]);
    // The other project's allow list includes the tool too, but the token is not bound to it.
    expect((await initialize(bound, other.project.id)).status).toBe(403);
    // Without the mcp scope, not over GraphQL either.
    const noMcp = await serviceToken({ scopes: ['work', 'write'] });
    const viaGraphql = await fetch(s.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${noMcp}` },
      body: JSON.stringify({
        query: `mutation($input: CallMcpToolInput!) { callMcpTool(input: $input) { isError } }`,
        variables: { input: { serverId, tool: 'count', arguments: { label: 'no' }, projectId: project.id } },
      }),
    });
    expect(JSON.stringify(await viaGraphql.json())).toContain('FORBIDDEN');
    expect(remote.calls.length).toBe(served + 1);
  });
});
