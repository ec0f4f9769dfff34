import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { ApproveApprovalDocument, VerifyAuditChainDocument } from '../generated/graphql.js';
import { gql, ok } from '../support/client.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';
import { team as makeTeam } from '../support/projects.js';
import { RemoteMcpServer } from '../support/remote-mcp.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { firstAdmin, unique, type TestUser } from '../support/users.js';

/**
 * Agents in conversations call the MCP tools their project allows: the model (a fake
 * OpenAI-compatible upstream that counts what it received) is offered the tools, asks for
 * one, Steward runs it through the same gate as callMcpTool on a real remote MCP server
 * (the SDK's, over Streamable HTTP, counting its calls), feeds the result back, and asks
 * the model again — each round a metered call.
 */
const MAX_ROUNDS = 3;
let s: TestServer;
let fake: FakeOpenAI;
let admin: TestUser;
let providerId: string;
let serverId: string;
let serverName: string;
const remote = new RemoteMcpServer('agent-remote-secret-0123456789');

const TOOL_CALL_FIELDS = 'id round name server tool arguments status result mcpToolCallId approvalId';
const SEND = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { id role content promptTokens completionTokens toolCalls { ${TOOL_CALL_FIELDS} } } }`;

beforeAll(async () => {
  fake = await startFakeOpenAI();
  await remote.start();
  s = await startTestServer({ env: { AGENT_MAX_TOOL_ROUNDS: String(MAX_ROUNDS) } });
  admin = await firstAdmin(s);
  providerId = (
    await ok(
      s.url,
      `mutation($input: CreateProviderInput!) { createProvider(input: $input) { id } }`,
      {
        input: {
          name: unique('agent-llm-'),
          providerType: 'OPENAI',
          modelName: 'gpt-test',
          apiEndpoint: fake.baseURL,
          apiKey: 'sk-agent-test-key',
          inputCostPer1k: '0.002000',
          outputCostPer1k: '0.004000',
          maxTokens: 200,
          timeoutSeconds: 10,
        },
      },
      admin.token,
    )
  ).createProvider.id;
  serverName = unique('agenttools-');
  serverId = (
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
  expect(
    (await ok(s.url, `mutation($id: ID!) { refreshMcpServer(id: $id) { status } }`, { id: serverId }, admin.token))
      .refreshMcpServer.status,
  ).toBe('ACTIVE');
});
afterAll(async () => {
  await s?.close();
  await remote.stop();
  await fake?.close();
});
beforeEach(() => fake.reset());

const tool = (name: string) => `${serverName}__${name}`;

/** A project whose owner allows `tools` (with needsApproval where asked), and a contributor's conversation in it. */
async function setUp(grants: { tool: string | null; needsApproval?: boolean }[]) {
  const {
    owner,
    project,
    members: [contributor],
  } = await makeTeam(s, admin, ['CONTRIBUTOR']);
  for (const g of grants)
    await ok(
      s.url,
      `mutation($input: AllowMcpToolInput!) { allowMcpTool(input: $input) { id } }`,
      { input: { serverId, projectId: project.id, tool: g.tool, needsApproval: g.needsApproval ?? false } },
      owner.token,
    );
  const conversationId = (
    await ok(
      s.url,
      `mutation($input: StartConversationInput!) { startConversation(input: $input) { id } }`,
      { input: { projectId: project.id, providerId } },
      contributor!.token,
    )
  ).startConversation.id as string;
  return { owner, project, contributor: contributor!, conversationId };
}

const send = async (by: TestUser, conversationId: string, content: string) => {
  const r = await gql(s.url, SEND, { input: { conversationId, content } }, by.token);
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.sendMessage;
};
const promptLogs = (conversationId: string) =>
  s.sql<{ status: string }>(`SELECT status FROM prompt_logs WHERE conversation_id = $1 ORDER BY created_at`, [
    conversationId,
  ]);
const toolCallRows = (projectId: string) =>
  s.sql<{ id: string; status: string; tool: string; caller_id: string }>(
    `SELECT id, status, tool, caller_id FROM mcp_tool_calls WHERE project_id = $1 ORDER BY id`,
    [projectId],
  );
/** The OpenAI-format messages the upstream received in its n-th completion request (0 first). */
const received = (n: number) => fake.completions[n]!.body as { messages: any[]; tools?: any[] };

describe('agents call MCP tools in conversations', () => {
  it('offers the allowed tools, runs the call on the real server, feeds the result back, and asks again (each round metered)', async () => {
    const { project, contributor, conversationId } = await setUp([{ tool: 'count' }]);
    const served = remote.calls.length;
    fake.script(
      { toolCalls: [{ name: tool('count'), arguments: JSON.stringify({ label: 'from the agent' }) }] },
      { reply: 'The counter has served the call.' },
    );
    const reply = await send(contributor, conversationId, 'Please count this once.');

    // The upstream: two requests, the first offering exactly the allowed tool with the server's schema.
    expect(fake.completions).toHaveLength(2);
    const first = received(0);
    expect(first.tools).toHaveLength(1);
    expect(first.tools![0]).toMatchObject({
      type: 'function',
      function: {
        name: tool('count'),
        parameters: { type: 'object', properties: { label: { type: 'string' } }, required: ['label'] },
      },
    });
    expect(first.messages.at(-1)).toEqual({ role: 'user', content: 'Please count this once.' });
    // The second carries the model's tool call and the real server's result as a `tool` message.
    const second = received(1);
    const [asked, result] = second.messages.slice(-2);
    expect(asked).toMatchObject({
      role: 'assistant',
      tool_calls: [{ type: 'function', function: { name: tool('count') } }],
    });
    expect(result).toEqual({
      role: 'tool',
      tool_call_id: asked.tool_calls[0].id,
      content: `call ${served + 1}: from the agent`,
    });

    // The remote server really ran it, once; Steward recorded it for the contributor.
    expect(remote.calls.slice(served)).toEqual([{ label: 'from the agent' }]);
    const rows = await toolCallRows(project.id);
    expect(rows).toMatchObject([{ status: 'SUCCEEDED', tool: 'count', caller_id: contributor.id }]);

    // The reply shows the call; the conversation keeps it.
    expect(reply).toMatchObject({
      role: 'ASSISTANT',
      content: 'The counter has served the call.',
      toolCalls: [
        {
          id: asked.tool_calls[0].id,
          round: 1,
          name: tool('count'),
          server: serverName,
          tool: 'count',
          arguments: { label: 'from the agent' },
          status: 'SUCCEEDED',
          result: `call ${served + 1}: from the agent`,
          mcpToolCallId: rows[0]!.id,
          approvalId: null,
        },
      ],
    });
    const conv = await ok(
      s.url,
      `query($id: ID!) { conversation(id: $id) { messages(first: 10) { edges { node { role content toolCalls { status name } } } } } }`,
      { id: conversationId },
      contributor.token,
    );
    expect(conv.conversation.messages.edges.map((e: any) => e.node)).toEqual([
      { role: 'USER', content: 'Please count this once.', toolCalls: null },
      {
        role: 'ASSISTANT',
        content: 'The counter has served the call.',
        toolCalls: [{ status: 'SUCCEEDED', name: tool('count') }],
      },
    ]);

    // Each round went through the metered pipeline: two successful calls logged, the reply's usage is both rounds'.
    expect(await promptLogs(conversationId)).toEqual([{ status: 'SUCCESS' }, { status: 'SUCCESS' }]);
    const ledger = fake.ledger.totals();
    expect(ledger.calls).toBe(2);
    expect(reply.promptTokens).toBe(ledger.promptTokens);
    expect(reply.completionTokens).toBe(ledger.completionTokens);
    const [cost] = await s.sql<{ n: string }>(
      `SELECT count(*) AS n FROM cost_records c JOIN prompt_logs p ON p.id = c.prompt_log_id WHERE p.conversation_id = $1`,
      [conversationId],
    );
    expect(Number(cost!.n)).toBe(2);

    // The audit chain holds the tool call and verifies.
    const [audited] = await s.sql<{ n: string }>(
      `SELECT count(*) AS n FROM audit_events WHERE action = 'mcpTool.call' AND entity_id = $1`,
      [rows[0]!.id],
    );
    expect(Number(audited!.n)).toBe(1);
    expect((await ok(s.url, VerifyAuditChainDocument, {}, admin.token)).verifyAuditChain.ok).toBe(true);
  });

  it('refuses a tool the allow list does not include (an error result for the model, nothing run), and an unknown one', async () => {
    const { project, contributor, conversationId } = await setUp([{ tool: 'count' }]);
    const echoes = remote.echoes.length;
    fake.script(
      {
        toolCalls: [
          { name: tool('echo'), arguments: JSON.stringify({ text: 'should not run' }) },
          { name: 'nothing__here', arguments: '{}' },
        ],
      },
      { reply: 'I may not use that tool.' },
    );
    const reply = await send(contributor, conversationId, 'Echo something for me.');
    expect(remote.echoes.length).toBe(echoes);
    expect(fake.completions).toHaveLength(2);
    // Not offered in the first place.
    expect(received(0).tools!.map((t) => t.function.name)).toEqual([tool('count')]);
    const results = received(1).messages.filter((m) => m.role === 'tool');
    expect(results).toHaveLength(2);
    expect(results[0].content).toMatch(/^Error: FORBIDDEN: .*allow list/);
    expect(results[1].content).toBe('Error: there is no tool named nothing__here');
    expect(reply.content).toBe('I may not use that tool.');
    expect(reply.toolCalls.map((t: any) => [t.name, t.status])).toEqual([
      [tool('echo'), 'REFUSED'],
      ['nothing__here', 'INVALID'],
    ]);
    // The refusal is on the record, like a refused callMcpTool.
    expect(await toolCallRows(project.id)).toMatchObject([{ status: 'REFUSED', tool: 'echo' }]);
  });

  it('tells the model when the server cannot be reached (FAILED, on the record) and lets it answer', async () => {
    const { project, contributor, conversationId } = await setUp([{ tool: 'count' }]);
    await remote.stop();
    try {
      fake.script(
        { toolCalls: [{ name: tool('count'), arguments: JSON.stringify({ label: 'nobody home' }) }] },
        { reply: 'The counter is down.' },
      );
      const reply = await send(contributor, conversationId, 'Count while it is down.');
      const [result] = received(1).messages.filter((m) => m.role === 'tool');
      expect(result.content).toMatch(/^Error: The MCP server could not be reached: /);
      expect(reply).toMatchObject({ content: 'The counter is down.', toolCalls: [{ status: 'FAILED' }] });
      expect(await toolCallRows(project.id)).toMatchObject([{ status: 'FAILED', tool: 'count' }]);
    } finally {
      await remote.start();
    }
  });

  it("moves the user's deviation score once for a message, however many tool rounds answer it", async () => {
    const { owner, project, contributor } = await setUp([{ tool: 'count' }]);
    const taskId = (
      await ok(
        s.url,
        `mutation($input: CreateTaskInput!) { createTask(input: $input) { id } }`,
        { input: { projectId: project.id, title: 'Write the docs', allowedIntents: ['documentation'] } },
        owner.token,
      )
    ).createTask.id as string;
    await ok(
      s.url,
      `mutation($input: AssignTaskInput!) { assignTask(input: $input) { id } }`,
      { input: { taskId, userId: contributor.id } },
      owner.token,
    );
    const conversationId = (
      await ok(
        s.url,
        `mutation($input: StartConversationInput!) { startConversation(input: $input) { id } }`,
        { input: { projectId: project.id, taskId, providerId } },
        contributor.token,
      )
    ).startConversation.id as string;
    fake.script(
      { toolCalls: [{ name: tool('count'), arguments: JSON.stringify({ label: 'one' }) }] },
      { toolCalls: [{ name: tool('count'), arguments: JSON.stringify({ label: 'two' }) }] },
      { reply: 'Done.' },
    );
    await send(contributor, conversationId, 'Write a poem about the sea and the stars, with rhymes');
    expect(fake.completions).toHaveLength(3);
    const logs = await s.sql<{ delta: number }>(
      `SELECT deviation_delta::float8 AS delta FROM prompt_logs WHERE conversation_id = $1 ORDER BY created_at, id`,
      [conversationId],
    );
    expect(logs).toHaveLength(3);
    expect(logs[0]!.delta).toBeGreaterThan(0); // off the task's intents: counted, once
    expect(logs.slice(1).map((l) => l.delta)).toEqual([0, 0]);
    const [user] = await s.sql<{ score: number }>(`SELECT deviation_score::float8 AS score FROM users WHERE id = $1`, [
      contributor.id,
    ]);
    expect(user!.score).toBe(logs[0]!.delta);
  });

  it(`stops after ${MAX_ROUNDS} tool rounds when the model keeps asking for tools, saying so`, async () => {
    const { project, contributor, conversationId } = await setUp([{ tool: null }]);
    const served = remote.calls.length;
    fake.setDefault({ toolCalls: [{ name: tool('count'), arguments: JSON.stringify({ label: 'again' }) }] });
    const reply = await send(contributor, conversationId, 'Count forever.');
    // MAX_ROUNDS rounds of tools, then one more question whose tool request is not run.
    expect(fake.completions).toHaveLength(MAX_ROUNDS + 1);
    expect(remote.calls.length - served).toBe(MAX_ROUNDS);
    expect(reply.content).toBe(
      `[Stopped: the model still asked for tools after ${MAX_ROUNDS} rounds of tool calls (AGENT_MAX_TOOL_ROUNDS); they were not run.]`,
    );
    expect(reply.toolCalls.map((t: any) => [t.round, t.status])).toEqual([
      [1, 'SUCCEEDED'],
      [2, 'SUCCEEDED'],
      [3, 'SUCCEEDED'],
      [MAX_ROUNDS + 1, 'NOT_RUN'],
    ]);
    expect(await promptLogs(conversationId)).toHaveLength(MAX_ROUNDS + 1);
    expect((await toolCallRows(project.id)).map((r) => r.status)).toEqual(Array(MAX_ROUNDS).fill('SUCCEEDED'));
    // Every round's request carried all the results so far.
    expect(received(MAX_ROUNDS).messages.filter((m) => m.role === 'tool')).toHaveLength(MAX_ROUNDS);
  });

  it('a tool that needs approval creates an Approval and ends the turn; once approved, asked again, it runs once', async () => {
    const { owner, project, contributor, conversationId } = await setUp([{ tool: 'count', needsApproval: true }]);
    const served = remote.calls.length;
    const args = JSON.stringify({ label: 'gated by a human' });
    fake.script({ toolCalls: [{ name: tool('count'), arguments: args }] });
    const waiting = await send(contributor, conversationId, 'Count this, it matters.');
    expect(fake.completions).toHaveLength(1);
    expect(remote.calls.length).toBe(served);
    const [call] = waiting.toolCalls;
    expect(call).toMatchObject({ status: 'AWAITING_APPROVAL', name: tool('count') });
    expect(call.approvalId).toBeTruthy();
    expect(waiting.content).toBe(
      `[Waiting for approval: ${tool('count')} needs a human's approval (approval ${call.approvalId}). Ask again once it is approved and the call will run.]`,
    );
    const approval = await ok(
      s.url,
      `query($id: ID!) { approval(id: $id) { id status actionType } }`,
      { id: call.approvalId },
      owner.token,
    );
    expect(approval.approval).toMatchObject({ status: 'PENDING', actionType: 'mcp.tool_call' });
    expect(await toolCallRows(project.id)).toMatchObject([{ status: 'AWAITING_APPROVAL', tool: 'count' }]);
    expect(await promptLogs(conversationId)).toEqual([{ status: 'SUCCESS' }]);

    // Asked again before anyone decided: still waiting, still not run.
    fake.script({ toolCalls: [{ name: tool('count'), arguments: args }] });
    const still = await send(contributor, conversationId, 'Is it done?');
    expect(still.toolCalls[0]).toMatchObject({ status: 'AWAITING_APPROVAL', approvalId: call.approvalId });
    expect(remote.calls.length).toBe(served);

    await ok(s.url, ApproveApprovalDocument, { input: { id: call.approvalId } }, owner.token);
    fake.script({ toolCalls: [{ name: tool('count'), arguments: args }] }, { reply: 'Done: counted once.' });
    const done = await send(contributor, conversationId, 'It is approved, go ahead.');
    expect(remote.calls.slice(served)).toEqual([{ label: 'gated by a human' }]);
    expect(done).toMatchObject({
      content: 'Done: counted once.',
      toolCalls: [{ status: 'SUCCEEDED', approvalId: call.approvalId, result: `call ${served + 1}: gated by a human` }],
    });
    expect((await toolCallRows(project.id)).map((r) => r.status)).toEqual(['SUCCEEDED']);
  });

  it("an API token's scopes apply to its agent's tools: without the mcp scope the model is offered none", async () => {
    const { contributor, conversationId } = await setUp([{ tool: 'count' }]);
    const tokenWith = async (scopes: string[]) =>
      (
        await ok(
          s.url,
          `mutation($i: CreateApiTokenInput!) { createApiToken(input: $i) { token } }`,
          { i: { name: unique('agent-'), scopes } },
          contributor.token,
        )
      ).createApiToken.token as string;
    const as = (token: string) => ({ ...contributor, token });
    fake.script({ reply: 'Plain answer.' }, { reply: 'With tools at hand.' });
    expect((await send(as(await tokenWith(['ai'])), conversationId, 'One.')).toolCalls).toBeNull();
    await send(as(await tokenWith(['ai', 'mcp'])), conversationId, 'Two.');
    expect(received(0).tools).toBeUndefined();
    expect(received(1).tools!.map((t) => t.function.name)).toEqual([tool('count')]);
  });

  it('offers no tools to a conversation without a project', async () => {
    const { contributor } = await setUp([{ tool: null }]);
    const conversationId = (
      await ok(
        s.url,
        `mutation($input: StartConversationInput!) { startConversation(input: $input) { id } }`,
        { input: { providerId } },
        contributor.token,
      )
    ).startConversation.id as string;
    fake.script({ reply: 'No tools here.' });
    const reply = await send(contributor, conversationId, 'Hello.');
    expect(received(0).tools).toBeUndefined();
    expect(reply).toMatchObject({ content: 'No tools here.', toolCalls: null });
  });
});
