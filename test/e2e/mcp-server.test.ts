import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  ApprovalDocument,
  ApprovalRequestedDocument,
  ApprovalsDocument,
  ApproveApprovalDocument,
  CreateKnowledgeEntryDocument,
  CreateServiceTokenDocument,
  CreateTaskDocument,
  NotificationsDocument,
  TaskDocument,
} from '../generated/graphql.js';
import { ok, subscribe, wsClient } from '../support/client.js';
import { mcpClient } from '../support/mcp.js';
import { team as makeTeam } from '../support/projects.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, unique, type TestUser } from '../support/users.js';
import { busListeners } from '../support/wait.js';

let s: TestServer;
let admin: TestUser;
/** An agent's service token. */
let agentToken: string;
const clients: Client[] = [];
beforeAll(async () => {
  s = await startTestServer();
  admin = await firstAdmin(s);
  agentToken = (
    await ok(
      s.url,
      CreateServiceTokenDocument,
      {
        input: {
          name: 'agent',
          serviceActor: 'agent:senior-engineer',
          expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
          scopes: ['read', 'write', 'mcp'],
        },
      },
      admin.token,
    )
  ).createServiceToken.token;
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await s?.close();
});

const connect = async (token: string, project?: string) => {
  const c = await mcpClient(s, token, project);
  clients.push(c);
  return c;
};
type Structured = Record<string, any>;
const call = async (c: Client, name: string, args: Record<string, unknown>, opts?: Parameters<Client['callTool']>[2]) =>
  (await c.callTool({ name, arguments: args }, undefined, opts)) as {
    isError?: boolean;
    structuredContent?: Structured;
    content: { type: string; text: string }[];
  };
const structured = async (
  c: Client,
  name: string,
  args: Record<string, unknown>,
  opts?: Parameters<Client['callTool']>[2],
) => {
  const r = await call(c, name, args, opts);
  if (r.isError) throw new Error(`${name} failed: ${r.content[0]?.text}`);
  return r.structuredContent!;
};
const errorCode = (r: { isError?: boolean; content: { text: string }[] }) =>
  r.isError ? r.content[0]!.text.split(':')[0] : null;

describe('Steward as an MCP server (/mcp)', () => {
  it('answers 401 without a token, or with a bad one, over plain HTTP and to the SDK client', async () => {
    const init = {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
    };
    for (const authorization of [undefined, 'Bearer nope', 'Basic abc']) {
      const res = await fetch(`${s.app.url}/mcp`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...(authorization ? { authorization } : {}),
        },
        body: JSON.stringify(init),
      });
      expect(res.status, authorization).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
    }
    await expect(mcpClient(s, 'stw_not_a_token')).rejects.toThrow();
    expect(
      (await fetch(`${s.app.url}/mcp`, { method: 'GET', headers: { authorization: `Bearer ${admin.token}` } })).status,
    ).toBe(405);
  });

  it('lists its tools with input and output schemas', async () => {
    const c = await connect(agentToken);
    const { tools } = await c.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual([
      'get_approval',
      'list_tasks',
      'notify',
      'request_approval',
      'search_knowledge',
      'update_task_status',
    ]);
    for (const t of tools) {
      expect(t.inputSchema.type, t.name).toBe('object');
      expect(t.outputSchema?.type, t.name).toBe('object');
    }
    const request = tools.find((t) => t.name === 'request_approval')!;
    expect(request.inputSchema.required).toEqual(['actionType']);
    expect(Object.keys(request.inputSchema.properties!).sort()).toEqual([
      'actionType',
      'details',
      'expiresInMinutes',
      'projectId',
      'taskId',
    ]);
    expect(c.getServerVersion()?.name).toBe('steward');
  });

  it('request_approval → pending in GraphQL, pushed to a decider → approved → get_approval (waiting, with progress) sees it', async () => {
    const {
      owner,
      project,
      task,
      members: [maintainer],
    } = await makeTeam(s, admin, ['MAINTAINER']);
    const ws = wsClient(s.wsUrl, maintainer!.token);
    const listening = busListeners(s);
    const requested = subscribe(ws, ApprovalRequestedDocument, { projectId: project.id });
    await listening.registered();

    const agent = await connect(agentToken);
    const asked = await structured(agent, 'request_approval', {
      actionType: 'deploy',
      taskId: task.id,
      details: { env: 'production' },
      expiresInMinutes: 60,
    });
    expect(asked).toMatchObject({ status: 'PENDING' });
    expect(new Date(asked.expiresAt).getTime()).toBeGreaterThan(Date.now() + 59 * 60_000);

    const pushed = (await requested.next()).approvalRequested;
    expect(pushed).toMatchObject({
      id: asked.approvalId,
      status: 'PENDING',
      actionType: 'deploy',
      requestedByActor: 'agent:senior-engineer',
      requestedBy: null,
      project: { id: project.id },
    });
    const inbox = (
      await ok(s.url, ApprovalsDocument, { where: { awaitingMe: true, status: ['PENDING'] } }, maintainer!.token)
    ).approvals;
    expect(inbox.edges.map((e) => e.node.id)).toContain(asked.approvalId);
    const [audit] = await s.sql(`SELECT action, actor_label FROM audit_events WHERE entity_id = $1`, [
      asked.approvalId,
    ]);
    expect(audit).toMatchObject({ action: 'approval.request', actor_label: 'agent:senior-engineer' });

    expect(await structured(agent, 'get_approval', { approvalId: asked.approvalId })).toMatchObject({
      status: 'PENDING',
      decidedBy: null,
      decidedAt: null,
    });

    // Held open until the maintainer decides, reporting progress meanwhile.
    const progress: number[] = [];
    const waiting = structured(
      agent,
      'get_approval',
      { approvalId: asked.approvalId, wait: 30 },
      { onprogress: (p) => progress.push(p.progress), resetTimeoutOnProgress: true },
    );
    await new Promise((r) => setTimeout(r, 1600));
    await ok(s.url, ApproveApprovalDocument, { input: { id: asked.approvalId, notes: 'go ahead' } }, maintainer!.token);
    const decided = await waiting;
    expect(decided).toMatchObject({
      approvalId: asked.approvalId,
      status: 'APPROVED',
      decidedBy: maintainer!.id,
      notes: 'go ahead',
    });
    expect(decided.decidedAt).toBeTruthy();
    expect(progress.length).toBeGreaterThanOrEqual(1);
    expect((await ok(s.url, ApprovalDocument, { id: asked.approvalId }, owner.token)).approval).toMatchObject({
      status: 'APPROVED',
      decidedBy: { id: maintainer!.id },
    });
    requested.dispose();
    await ws.dispose();
  });

  it('states expiry: get_approval says EXPIRED once the approval is past its time, and the job records it', async () => {
    const { project } = await makeTeam(s, admin, []);
    const agent = await connect(agentToken);
    const asked = await structured(agent, 'request_approval', {
      actionType: 'merge',
      projectId: project.id,
      expiresInMinutes: 5,
    });
    await s.sql(`UPDATE approvals SET expires_at = now() + interval '800 milliseconds' WHERE id = $1`, [
      asked.approvalId,
    ]);
    const started = Date.now();
    const waited = await structured(agent, 'get_approval', { approvalId: asked.approvalId, wait: 20 });
    expect(waited.status).toBe('EXPIRED');
    expect(Date.now() - started).toBeLessThan(10_000);
    await s.app.runtime.scheduler.runNow('work.expireApprovals');
    const [row] = await s.sql<{ status: string }>(`SELECT status FROM approvals WHERE id = $1`, [asked.approvalId]);
    expect(row!.status).toBe('EXPIRED');
    expect(await structured(agent, 'get_approval', { approvalId: asked.approvalId })).toMatchObject({
      status: 'EXPIRED',
      decidedBy: null,
    });
  });

  it('applies the same rules as GraphQL: validation, visibility, roles', async () => {
    const {
      project,
      task,
      members: [viewer],
    } = await makeTeam(s, admin, ['VIEWER']);
    const stranger = await createUser(s, admin);
    const agent = await connect(agentToken);
    expect(errorCode(await call(agent, 'request_approval', { actionType: 'deploy', taskId: 'not-a-uuid' }))).toBe(
      'BAD_USER_INPUT',
    );
    expect(errorCode(await call(agent, 'request_approval', { actionType: 'deploy' }))).toBe('BAD_USER_INPUT');
    const asViewer = await connect(viewer!.token);
    expect(errorCode(await call(asViewer, 'request_approval', { actionType: 'deploy', taskId: task.id }))).toBe(
      'FORBIDDEN',
    );
    const asStranger = await connect(stranger.token);
    const asked = await structured(agent, 'request_approval', { actionType: 'deploy', projectId: project.id });
    expect(errorCode(await call(asStranger, 'get_approval', { approvalId: asked.approvalId }))).toBe('NOT_FOUND');
    expect((await structured(asViewer, 'get_approval', { approvalId: asked.approvalId })).status).toBe('PENDING');
    await expect(asViewer.callTool({ name: 'no_such_tool', arguments: {} })).rejects.toThrow(/Unknown tool/);
  });

  it('lists tasks and moves one, as the task operations do (audited, visible to GraphQL)', async () => {
    const {
      owner,
      project,
      task,
      members: [contributor, viewer],
    } = await makeTeam(s, admin, ['CONTRIBUTOR', 'VIEWER']);
    const second = (
      await ok(
        s.url,
        CreateTaskDocument,
        { input: { title: 'Write the changelog', projectId: project.id } },
        owner.token,
      )
    ).createTask;
    const c = await connect(contributor!.token);
    const listed = await structured(c, 'list_tasks', { projectId: project.id });
    expect(listed.totalCount).toBe(2);
    expect(listed.tasks.map((t: Structured) => t.id).sort()).toEqual([task.id, second.id].sort());
    expect(listed.tasks[0]).toMatchObject({ status: 'PENDING', projectId: project.id, projectName: project.name });
    expect((await structured(c, 'list_tasks', { projectId: project.id, first: 1 })).tasks).toHaveLength(1);

    expect(errorCode(await call(c, 'update_task_status', { taskId: task.id, status: 'ASSIGNED' }))).toBe(
      'BAD_USER_INPUT',
    ); // nobody assigned yet
    expect(await structured(c, 'update_task_status', { taskId: task.id, status: 'CANCELLED' })).toMatchObject({
      taskId: task.id,
      status: 'CANCELLED',
    });
    expect((await ok(s.url, TaskDocument, { id: task.id }, owner.token)).task!.status).toBe('CANCELLED');
    expect(
      (await structured(c, 'list_tasks', { projectId: project.id, status: ['CANCELLED'] })).tasks.map(
        (t: Structured) => t.id,
      ),
    ).toEqual([task.id]);
    const audits = await s.sql<{ actor_id: string }>(
      `SELECT actor_id FROM audit_events WHERE entity_id = $1 AND action LIKE 'task.%' ORDER BY created_at DESC LIMIT 1`,
      [task.id],
    );
    expect(audits[0]!.actor_id).toBe(contributor!.id);

    const v = await connect(viewer!.token);
    expect(errorCode(await call(v, 'update_task_status', { taskId: second.id, status: 'CANCELLED' }))).toBe(
      'FORBIDDEN',
    );
    expect(errorCode(await call(c, 'update_task_status', { taskId: task.id, status: 'NOPE' }))).toBe('BAD_USER_INPUT');
    const stranger = await connect((await createUser(s, admin)).token);
    expect((await structured(stranger, 'list_tasks', { projectId: project.id })).totalCount).toBe(0);
  });

  it("searches the knowledge base and notifies the token's user", async () => {
    const tag = unique('zebra');
    await ok(
      s.url,
      CreateKnowledgeEntryDocument,
      { input: { title: `Deploying ${tag}`, content: `How to deploy the ${tag} service safely.` } },
      admin.token,
    );
    const user = await createUser(s, admin);
    const c = await connect(user.token);
    const { results } = await structured(c, 'search_knowledge', { query: tag });
    expect(results).toHaveLength(1);
    expect(results[0].title).toBe(`Deploying ${tag}`);
    expect(results[0].rank).toBeGreaterThan(0);

    const sent = await structured(c, 'notify', { title: 'Build finished', message: 'All green' });
    expect(sent.userId).toBe(user.id);
    const inbox = (await ok(s.url, NotificationsDocument, {}, user.token)).notifications;
    expect(inbox.edges.map((e) => e.node.title)).toContain('Build finished');
    const [audit] = await s.sql(`SELECT action, actor_id FROM audit_events WHERE entity_id = $1`, [
      sent.notificationId,
    ]);
    expect(audit).toMatchObject({ action: 'notification.send', actor_id: user.id });
  });
});
