import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  AddProjectMemberDocument,
  ApproveApprovalDocument,
  CreateServiceTokenDocument,
  RejectApprovalDocument,
  VerifyAuditChainDocument,
} from '../generated/graphql.js';
import { codes, gql, ok } from '../support/client.js';
import { mcpClient } from '../support/mcp.js';
import { team as makeTeam } from '../support/projects.js';
import { RemoteMcpServer } from '../support/remote-mcp.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, unique, type TestUser } from '../support/users.js';

let s: TestServer;
/** A second instance on the same database. */
let s2: TestServer;
let admin: TestUser;
let agentToken: string;
let serverId: string;
let serverName: string;
const remote = new RemoteMcpServer('remote-secret-abcdef012345');
const clients: Client[] = [];

const CALL = `mutation($input: CallMcpToolInput!) { callMcpTool(input: $input) { content structuredContent isError approval { id status } call { id status tool serverName argumentsDigest durationMs callerActor caller { id } } } }`;
const ALLOW = `mutation($input: AllowMcpToolInput!) { allowMcpTool(input: $input) { id tool needsApproval server { id } } }`;
const CALLS = `query($first: Int, $after: String, $where: McpToolCallWhere) { mcpToolCalls(first: $first, after: $after, where: $where) { totalCount pageInfo { hasNextPage endCursor } edges { node { id status tool serverName argumentsDigest durationMs isError project { id } approval { id } } } } }`;

beforeAll(async () => {
  s = await startTestServer();
  s2 = await startTestServer({ shareDatabaseWith: s });
  admin = await firstAdmin(s);
  await remote.start();
  agentToken = (
    await ok(
      s.url,
      CreateServiceTokenDocument,
      {
        input: {
          name: 'agent',
          serviceActor: 'agent:release-bot',
          expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
          scopes: ['read', 'write', 'mcp'],
        },
      },
      admin.token,
    )
  ).createServiceToken.token;
  serverName = unique('tools-');
  const registered = await ok(
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
  );
  serverId = registered.registerMcpServer.id;
  expect(
    (await ok(s.url, `mutation($id: ID!) { refreshMcpServer(id: $id) { status } }`, { id: serverId }, admin.token))
      .refreshMcpServer.status,
  ).toBe('ACTIVE');
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await remote.stop();
  await s2?.close();
  await s?.close();
});

const connect = async (token: string, project?: string, on = s) => {
  const c = await mcpClient(on, token, project);
  clients.push(c);
  return c;
};
const callTool = (token: string, input: Record<string, unknown>, on = s) =>
  gql(on.url, CALL, { input: { serverId, ...input } }, token);
const called = async (token: string, input: Record<string, unknown>, on = s) => {
  const r = await callTool(token, input, on);
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.callMcpTool;
};
const allow = (token: string, input: Record<string, unknown>) =>
  ok(s.url, ALLOW, { input: { serverId, ...input } }, token);

describe('tool calls through Steward', () => {
  it('runs an allowed call (counted by the remote server), refuses what the allow list does not include, and records both', async () => {
    const {
      owner,
      project,
      members: [contributor, viewer],
    } = await makeTeam(s, admin, ['CONTRIBUTOR', 'VIEWER']);
    expect(
      codes(await gql(s.url, ALLOW, { input: { serverId, projectId: project.id, tool: 'count' } }, contributor!.token)),
    ).toEqual(['FORBIDDEN']);
    expect(
      codes(await gql(s.url, ALLOW, { input: { serverId, projectId: project.id, tool: 'count' } }, agentToken)),
    ).toEqual(['FORBIDDEN']);
    await allow(owner.token, { projectId: project.id, tool: 'count' });

    const before = remote.calls.length;
    const r = await called(contributor!.token, { tool: 'count', arguments: { label: 'first' }, projectId: project.id });
    expect(remote.calls.length).toBe(before + 1);
    expect(r).toMatchObject({
      isError: false,
      approval: null,
      structuredContent: { served: before + 1, label: 'first' },
      call: { status: 'SUCCEEDED', tool: 'count', serverName, caller: { id: contributor!.id } },
    });
    expect(r.content).toEqual([{ type: 'text', text: `call ${before + 1}: first` }]);
    expect(r.call.argumentsDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(r.call.durationMs).toBeGreaterThanOrEqual(0);

    // Not on the list: another tool of the server, another project, a role below CONTRIBUTOR, no project at all.
    const other = await makeTeam(s, admin, []);
    for (const [token, input] of [
      [contributor!.token, { tool: 'echo', arguments: { text: 'x' }, projectId: project.id }],
      [other.owner.token, { tool: 'count', arguments: { label: 'x' }, projectId: other.project.id }],
      [viewer!.token, { tool: 'count', arguments: { label: 'x' }, projectId: project.id }],
      [contributor!.token, { tool: 'count', arguments: { label: 'x' } }],
    ] as const)
      expect(codes(await callTool(token, input)), JSON.stringify(input)).toEqual(['FORBIDDEN']);
    expect(remote.calls.length).toBe(before + 1);
    const refused = await s.sql<{ status: string; tool: string }>(
      `SELECT status, tool FROM mcp_tool_calls WHERE status = 'REFUSED' AND project_id = ANY($1)`,
      [[project.id, other.project.id]],
    );
    expect(refused).toHaveLength(3);
    expect(codes(await callTool(contributor!.token, { tool: 'nope', arguments: {}, projectId: project.id }))).toEqual([
      'FORBIDDEN',
    ]);
    // A server-wide entry lets every tool through.
    await allow(owner.token, { projectId: project.id });
    expect(
      (await called(contributor!.token, { tool: 'echo', arguments: { text: 'hello' }, projectId: project.id })).content,
    ).toEqual([{ type: 'text', text: 'hello' }]);
    expect(codes(await callTool(contributor!.token, { tool: 'nope', arguments: {}, projectId: project.id }))).toEqual([
      'NOT_FOUND',
    ]);
  });

  it('re-exposes the allowed tools on /mcp as <server>__<tool>, for the project the caller names', async () => {
    const { owner, project } = await makeTeam(s, admin, []);
    await allow(owner.token, { projectId: project.id, tool: 'count' });
    const agent = await connect(agentToken, project.id);
    const names = (await agent.listTools()).tools.map((t) => t.name);
    expect(names).toContain(`${serverName}__count`);
    expect(names).not.toContain(`${serverName}__echo`);
    const exposed = (await agent.listTools()).tools.find((t) => t.name === `${serverName}__count`)!;
    expect(exposed.inputSchema).toMatchObject({ type: 'object', properties: { label: { type: 'string' } } });
    expect((await (await connect(agentToken)).listTools()).tools.map((t) => t.name)).not.toContain(
      `${serverName}__count`,
    );

    const before = remote.calls.length;
    const r = (await agent.callTool({ name: `${serverName}__count`, arguments: { label: 'via mcp' } })) as {
      structuredContent?: { served: number };
    };
    expect(r.structuredContent!.served).toBe(before + 1);
    expect(remote.calls.length).toBe(before + 1);
    await expect(agent.callTool({ name: `${serverName}__echo`, arguments: { text: 'x' } })).rejects.toThrow(
      /Unknown tool/,
    );
    const [row] = await s.sql<{ caller_actor: string; status: string }>(
      `SELECT caller_actor, status FROM mcp_tool_calls WHERE project_id = $1`,
      [project.id],
    );
    expect(row).toMatchObject({ caller_actor: 'agent:release-bot', status: 'SUCCEEDED' });
  });

  it('gates a tool on an approval: answers with it while pending, runs exactly once when approved (on another instance, retried from two), never when rejected', async () => {
    const {
      owner,
      project,
      members: [maintainer],
    } = await makeTeam(s, admin, ['MAINTAINER']);
    await allow(owner.token, { projectId: project.id });
    await allow(owner.token, { projectId: project.id, tool: 'count', needsApproval: true });
    const agent = await connect(agentToken, project.id);
    const name = `${serverName}__count`;
    expect((await agent.listTools()).tools.find((t) => t.name === name)!.description).toMatch(
      /Needs a human's approval/,
    );
    const before = remote.calls.length;

    const first = (await agent.callTool({ name, arguments: { label: 'deploy' } })) as unknown as {
      isError?: boolean;
      structuredContent: { approval: { approvalId: string; status: string } };
    };
    expect(first.isError).toBeFalsy();
    expect(first.structuredContent.approval.status).toBe('PENDING');
    const approvalId = first.structuredContent.approval.approvalId;
    // A retry while pending is the same call: the same approval, still nothing run.
    const again = (await agent.callTool({ name, arguments: { label: 'deploy' } })) as unknown as typeof first;
    expect(again.structuredContent.approval.approvalId).toBe(approvalId);
    const viaGraphql = await called(agentToken, {
      tool: 'count',
      arguments: { label: 'deploy' },
      projectId: project.id,
    });
    expect(viaGraphql).toMatchObject({
      content: null,
      approval: { id: approvalId, status: 'PENDING' },
      call: { status: 'AWAITING_APPROVAL', callerActor: 'agent:release-bot' },
    });
    expect(remote.calls.length).toBe(before);
    // An ungated tool of the same server runs at once.
    expect((await agent.callTool({ name: `${serverName}__echo`, arguments: { text: 'free' } })).content).toEqual([
      { type: 'text', text: 'free' },
    ]);

    // Approved on the other instance; then retried at once from both instances.
    await ok(s2.url, ApproveApprovalDocument, { input: { id: approvalId, notes: 'ship it' } }, maintainer!.token);
    const [a, b] = await Promise.all([
      agent.callTool({ name, arguments: { label: 'deploy' } }) as unknown as Promise<{
        structuredContent: { served: number };
      }>,
      called(agentToken, { tool: 'count', arguments: { label: 'deploy' }, projectId: project.id }, s2),
    ]);
    expect(remote.calls.length).toBe(before + 1);
    expect(a.structuredContent.served).toBe(before + 1);
    expect(b.structuredContent.served).toBe(before + 1);
    const rows = await s.sql<{ status: string; approval_id: string; arguments: unknown }>(
      `SELECT status, approval_id, arguments FROM mcp_tool_calls WHERE approval_id = $1`,
      [approvalId],
    );
    expect(rows).toEqual([{ status: 'SUCCEEDED', approval_id: approvalId, arguments: null }]);

    // The same arguments again: a new call, with a new approval. Rejected: never run, and the caller is told.
    const next = (await agent.callTool({ name, arguments: { label: 'deploy' } })) as unknown as typeof first;
    expect(next.structuredContent.approval.approvalId).not.toBe(approvalId);
    await ok(
      s.url,
      RejectApprovalDocument,
      { input: { id: next.structuredContent.approval.approvalId, notes: 'not on a Friday' } },
      maintainer!.token,
    );
    const refused = (await agent.callTool({ name, arguments: { label: 'deploy' } })) as unknown as {
      isError: boolean;
      content: { text: string }[];
    };
    expect(refused.isError).toBe(true);
    expect(refused.content[0]!.text).toMatch(/rejected: not on a Friday/);
    expect(remote.calls.length).toBe(before + 1);

    // Expired before anyone decided (the expiry job): never run either.
    const late = (await agent.callTool({ name, arguments: { label: 'late' } })) as unknown as typeof first;
    await s.sql(`UPDATE approvals SET expires_at = now() - interval '1 second' WHERE id = $1`, [
      late.structuredContent.approval.approvalId,
    ]);
    await s.app.runtime.scheduler.runNow('work.expireApprovals');
    const expired = (await agent.callTool({ name, arguments: { label: 'late' } })) as unknown as {
      isError: boolean;
      content: { text: string }[];
    };
    expect(expired.isError).toBe(true);
    expect(expired.content[0]!.text).toMatch(/expired/);
    expect(remote.calls.length).toBe(before + 1);
    const statuses = await s.sql<{ status: string }>(
      `SELECT status FROM mcp_tool_calls WHERE project_id = $1 AND tool = 'count' ORDER BY id`,
      [project.id],
    );
    expect(statuses.map((r) => r.status)).toEqual(['SUCCEEDED', 'REJECTED', 'EXPIRED']);
  });

  it('fails, never re-runs, an approved call whose runner was lost mid-call', async () => {
    const {
      owner,
      project,
      members: [maintainer],
    } = await makeTeam(s, admin, ['MAINTAINER']);
    await allow(owner.token, { projectId: project.id, tool: 'count', needsApproval: true });
    const asked = await called(agentToken, { tool: 'count', arguments: { label: 'lost' }, projectId: project.id });
    await ok(s.url, ApproveApprovalDocument, { input: { id: asked.approval.id } }, maintainer!.token);
    // As if an instance had claimed it and died three minutes ago.
    await s.sql(
      `UPDATE mcp_tool_calls SET status = 'RUNNING', updated_at = now() - interval '3 minutes' WHERE id = $1`,
      [asked.call.id],
    );
    const before = remote.calls.length;
    const r = await called(agentToken, { tool: 'count', arguments: { label: 'lost' }, projectId: project.id });
    expect(r).toMatchObject({ isError: true, call: { id: asked.call.id, status: 'FAILED' } });
    expect(r.content[0].text).toMatch(/^Interrupted/);
    expect(remote.calls.length).toBe(before);
  });

  it("lists tool calls for admins and the project's maintainers, paginated; the audit chain verifies with every call in it", async () => {
    const {
      owner,
      project,
      members: [maintainer, contributor],
    } = await makeTeam(s, admin, ['MAINTAINER', 'CONTRIBUTOR']);
    await allow(owner.token, { projectId: project.id, tool: 'count' });
    for (const label of ['a', 'b', 'c'])
      await called(contributor!.token, { tool: 'count', arguments: { label }, projectId: project.id });
    expect(
      codes(await callTool(contributor!.token, { tool: 'echo', arguments: { text: 'no' }, projectId: project.id })),
    ).toEqual(['FORBIDDEN']);

    const page1 = (await ok(s.url, CALLS, { first: 2, where: { projectId: project.id } }, maintainer!.token))
      .mcpToolCalls;
    expect(page1.totalCount).toBe(4);
    expect(page1.pageInfo.hasNextPage).toBe(true);
    const page2 = (
      await ok(
        s.url,
        CALLS,
        { first: 2, after: page1.pageInfo.endCursor, where: { projectId: project.id } },
        maintainer!.token,
      )
    ).mcpToolCalls;
    const all = [...page1.edges, ...page2.edges].map((e: { node: { status: string; tool: string } }) => e.node);
    expect(all.map((n) => `${n.tool}:${n.status}`)).toEqual([
      'echo:REFUSED',
      'count:SUCCEEDED',
      'count:SUCCEEDED',
      'count:SUCCEEDED',
    ]);
    expect(
      (await ok(s.url, CALLS, { where: { projectId: project.id, status: ['REFUSED'] } }, admin.token)).mcpToolCalls
        .totalCount,
    ).toBe(1);
    expect(
      (await ok(s.url, CALLS, { where: { projectId: project.id } }, contributor!.token)).mcpToolCalls.totalCount,
    ).toBe(0);
    expect(codes(await gql(s.url, CALLS, {}, agentToken))).toEqual(['FORBIDDEN']);
    const stranger = await createUser(s, admin);
    await ok(
      s.url,
      AddProjectMemberDocument,
      { input: { projectId: (await makeTeam(s, admin, [])).project.id, userId: stranger.id, role: 'VIEWER' } },
      admin.token,
    ).catch(() => {});
    expect((await ok(s.url, CALLS, {}, stranger.token)).mcpToolCalls.totalCount).toBe(0);

    const audit = await s.sql<{ after: Record<string, unknown>; outcome: string; actor_id: string }>(
      `SELECT after, outcome, actor_id FROM audit_events WHERE action = 'mcpTool.call' AND after->>'projectId' = $1 ORDER BY created_at`,
      [project.id],
    );
    expect(audit).toHaveLength(4);
    expect(audit.filter((e) => e.outcome === 'SUCCESS')).toHaveLength(3);
    for (const e of audit) {
      expect(e.actor_id).toBe(contributor!.id);
      expect(e.after).toMatchObject({
        server: serverName,
        serverId,
        argumentsDigest: expect.stringMatching(/^[0-9a-f]{64}$/),
        durationMs: expect.any(Number),
      });
    }
    const chain = (await ok(s.url, VerifyAuditChainDocument, {}, admin.token)).verifyAuditChain;
    expect(chain).toMatchObject({ ok: true, firstBrokenId: null });
    const linked = await s.sql<{ n: string }>(
      `SELECT count(*) AS n FROM audit_events WHERE action = 'mcpTool.call' AND seq IS NOT NULL`,
    );
    expect(Number(linked[0]!.n)).toBeGreaterThanOrEqual(4);
  });
});
