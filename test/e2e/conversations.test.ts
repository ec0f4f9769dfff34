import { randomBytes, randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';

import { seedAgents } from '../../src/modules/ai/agent.seed.js';
import {
  AgentsDocument,
  ArchiveConversationDocument,
  AssignAgentDocument,
  ConversationDocument,
  ConversationsDocument,
  CreateKnowledgeEntryDocument,
  CreateTaskDocument,
  DeactivateKnowledgeEntryDocument,
  MessageAddedDocument,
  MessageStreamDocument,
  RemoveProjectMemberDocument,
  SendMessageDocument,
  StartConversationDocument,
  UpdateAgentDocument,
  UpdateTaskStatusDocument,
  type AgentType,
  type MessageAddedSubscription,
  type MessageStreamSubscription,
  type ProjectRole,
  type Role,
  type StartConversationInput,
} from '../generated/graphql.js';
import { codes, gql, ok, subscribe, wsClient, wsExecute, type Subscription } from '../support/client.js';
import { team as makeTeam } from '../support/projects.js';
import { sentinel } from '../support/sentinel.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, unique, type TestUser } from '../support/users.js';
import { busListeners } from '../support/wait.js';

let s: TestServer;
let admin: TestUser;
beforeAll(async () => {
  s = await startTestServer();
  admin = await firstAdmin(s);
});
afterAll(() => s?.close());

const user = (role: Role = 'USER') => createUser(s, admin, role);
const team = (...roles: ProjectRole[]) => makeTeam(s, admin, roles, 'Design the billing API');

/** A conversation may be bound only to a task its user is assigned to (prompt governance). */
const assign = (taskId: string, u: TestUser) =>
  ok(
    s.url,
    `mutation($i: AssignTaskInput!) { assignTask(input: $i) { id } }`,
    { i: { taskId, userId: u.id } },
    admin.token,
  );
const start = (by: TestUser, input: StartConversationInput = {}) =>
  gql(s.url, StartConversationDocument, { input }, by.token);
const started = async (by: TestUser, input: StartConversationInput = {}) => {
  const r = await start(by, input);
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.startConversation;
};
const send = (by: TestUser, conversationId: string, content: string) =>
  gql(s.url, SendMessageDocument, { input: { conversationId, content } }, by.token);
const sent = async (by: TestUser, conversationId: string, content: string) => {
  const r = await send(by, conversationId, content);
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.sendMessage;
};
const conversationOf = async (
  viewer: TestUser,
  id: string,
  page: { first?: number; after?: string; last?: number; before?: string } = { first: 50 },
) => (await ok(s.url, ConversationDocument, { id, ...page }, viewer.token)).conversation;
const agentsAs = async (viewer: TestUser, includeInactive = false) =>
  (await ok(s.url, AgentsDocument, { includeInactive }, viewer.token)).agents;
const agentOf = async (type: AgentType) => (await agentsAs(admin, true)).find((a) => a.type === type)!;
const storedMessages = (conversationId: string) =>
  s.sql<{ id: string; role: string; content: string }>(
    `SELECT id, role, content FROM messages WHERE conversation_id = $1 ORDER BY id`,
    [conversationId],
  );
const promptLogs = (conversationId: string) =>
  s.sql<{ status: string; system_message: string | null; prompt: string; conversation_id: string }>(
    `SELECT status, system_message, prompt, conversation_id FROM prompt_logs WHERE conversation_id = $1 ORDER BY created_at`,
    [conversationId],
  );

/** A graphql-ws client for `viewer`, disposed when the test ends. */
function socketOf(viewer: TestUser) {
  const client = wsClient(s.wsUrl, viewer.token);
  onTestFinished(() => client.dispose());
  return client;
}
function follow<T>(sub: Subscription<T>) {
  onTestFinished(() => sub.dispose());
  return sub;
}
/** The chunks of one reply, up to and including the one with done = true. */
async function reply(sub: Subscription<MessageStreamSubscription>) {
  const chunks: MessageStreamSubscription['messageStream'][] = [];
  for (;;) {
    const c = (await sub.next()).messageStream;
    chunks.push(c);
    if (c.done) return chunks;
  }
}

describe('agents', () => {
  it('seeds the six development agents and the assistant, each with a system prompt and the local model', async () => {
    const agents = await agentsAs(await user());
    expect(agents.map((a) => [a.type, a.name])).toEqual([
      ['DEV_MANAGER', 'Development Manager'],
      ['PRODUCT_MANAGER', 'Product Manager'],
      ['DATA_ANALYST', 'Data Analyst'],
      ['SENIOR_ENGINEER', 'Senior Engineer'],
      ['ARCHITECT', 'Architect'],
      ['PLATFORM_ENGINEER', 'Platform Engineer'],
      ['ASSISTANT', 'Assistant'],
    ]);
    for (const a of agents) {
      expect(a).toMatchObject({ defaultModel: 'steward-local-1', active: true });
      expect(a.systemPrompt.length).toBeGreaterThan(300);
      expect(a.currentLoad).toBeGreaterThanOrEqual(0);
    }
  });

  it("seeds idempotently: missing agents come back, an admin's edits stay", async () => {
    const architect = await agentOf('ARCHITECT');
    const prompt = `You are our architect. ${unique()}`;
    await ok(
      s.url,
      UpdateAgentDocument,
      { input: { id: architect.id, systemPrompt: prompt, defaultModel: 'gpt-4o-mini' } },
      admin.token,
    );
    onTestFinished(async () => {
      await s.sql(`UPDATE agents SET system_prompt = $2, default_model = 'steward-local-1' WHERE id = $1`, [
        architect.id,
        architect.systemPrompt,
      ]);
    });

    await seedAgents(s.app.runtime.orm.em.fork() as EntityManager);
    await seedAgents(s.app.runtime.orm.em.fork() as EntityManager);
    const rows = await s.sql<{ type: string; n: number }>(
      `SELECT type, count(*)::int AS n FROM agents GROUP BY type ORDER BY type`,
    );
    expect(rows).toHaveLength(7);
    expect(rows.every((r) => r.n === 1)).toBe(true);
    expect(await agentOf('ARCHITECT')).toMatchObject({
      id: architect.id,
      systemPrompt: prompt,
      defaultModel: 'gpt-4o-mini',
    });
  });

  it("counts an agent's open tasks as its current load, as tasks are assigned and closed", async () => {
    const { owner, project } = await team();
    const load = async () => (await agentsAs(owner)).find((a) => a.type === 'DATA_ANALYST')!.currentLoad;
    const before = await load();
    const t1 = (
      await ok(
        s.url,
        CreateTaskDocument,
        { input: { title: 'Churn analysis', projectId: project.id, assignedAgents: ['DATA_ANALYST'] } },
        owner.token,
      )
    ).createTask;
    const t2 = (
      await ok(s.url, CreateTaskDocument, { input: { title: 'Funnel metrics', projectId: project.id } }, owner.token)
    ).createTask;
    expect(await load()).toBe(before + 1);
    await ok(s.url, AssignAgentDocument, { input: { taskId: t2.id, agent: 'DATA_ANALYST' } }, owner.token);
    expect(await load()).toBe(before + 2);
    for (const status of ['ASSIGNED', 'IN_PROGRESS'] as const)
      await ok(s.url, UpdateTaskStatusDocument, { input: { taskId: t1.id, status } }, owner.token);
    expect(await load()).toBe(before + 2); // still open
    await ok(s.url, UpdateTaskStatusDocument, { input: { taskId: t1.id, status: 'COMPLETED' } }, owner.token);
    await ok(s.url, UpdateTaskStatusDocument, { input: { taskId: t2.id, status: 'CANCELLED' } }, owner.token);
    expect(await load()).toBe(before);
  });

  it('lets only admins edit agents, audits the edit, and hides an inactive agent from users and new conversations', async () => {
    const someone = await user();
    const pm = await agentOf('PRODUCT_MANAGER');
    expect(codes(await gql(s.url, UpdateAgentDocument, { input: { id: pm.id, name: 'PM' } }, someone.token))).toEqual([
      'FORBIDDEN',
    ]);
    expect(
      codes(
        await gql(s.url, UpdateAgentDocument, { input: { id: pm.id, name: 'PM' } }, (await user('OBSERVER')).token),
      ),
    ).toEqual(['FORBIDDEN']);
    expect(
      codes(await gql(s.url, UpdateAgentDocument, { input: { id: randomUUID(), name: 'PM' } }, admin.token)),
    ).toEqual(['NOT_FOUND']);
    expect(
      codes(await gql(s.url, UpdateAgentDocument, { input: { id: pm.id, systemPrompt: '' } }, admin.token)),
    ).toEqual(['BAD_USER_INPUT']);

    const edited = (
      await ok(
        s.url,
        UpdateAgentDocument,
        { input: { id: pm.id, name: 'Product Owner', description: null, active: false } },
        admin.token,
      )
    ).updateAgent;
    onTestFinished(async () => {
      await s.sql(`UPDATE agents SET name = $2, description = $3, active = true WHERE id = $1`, [
        pm.id,
        pm.name,
        pm.description,
      ]);
    });
    expect(edited).toMatchObject({
      id: pm.id,
      name: 'Product Owner',
      description: null,
      active: false,
      systemPrompt: pm.systemPrompt,
    });
    const [audit] = await s.sql(
      `SELECT before, after, actor_id FROM audit_events WHERE action = 'agent.update' AND entity_id = $1 ORDER BY created_at DESC LIMIT 1`,
      [pm.id],
    );
    expect(audit).toMatchObject({
      actor_id: admin.id,
      before: { name: 'Product Manager', active: true },
      after: { name: 'Product Owner', active: false },
    });

    expect((await agentsAs(someone)).map((a) => a.type)).not.toContain('PRODUCT_MANAGER');
    expect((await agentsAs(someone, true)).map((a) => a.type)).not.toContain('PRODUCT_MANAGER'); // includeInactive is for admins
    expect((await agentsAs(admin, true)).map((a) => a.type)).toContain('PRODUCT_MANAGER');
    expect(codes(await start(someone, { agentId: pm.id }))).toEqual(['CONFLICT']);
  });
});

describe('starting conversations', () => {
  it('talks to the assistant when no agent is named', async () => {
    const me = await user();
    const c = await started(me, { title: 'Hair care' });
    expect(c).toMatchObject({
      title: 'Hair care',
      active: true,
      user: { id: me.id },
      agent: { type: 'ASSISTANT' },
      project: null,
      task: null,
      provider: null,
    });
    const [audit] = await s.sql(
      `SELECT actor_id, after FROM audit_events WHERE action = 'conversation.start' AND entity_id = $1`,
      [c.id],
    );
    expect(audit).toMatchObject({ actor_id: me.id, after: { agentType: 'ASSISTANT' } });
  });

  it('starts a conversation about a task; the task brings its project', async () => {
    const {
      project,
      task,
      members: [dev],
    } = await team('CONTRIBUTOR');
    const engineer = await agentOf('SENIOR_ENGINEER');
    await assign(task.id, dev!);
    const c = await started(dev!, { agentId: engineer.id, taskId: task.id });
    expect(c).toMatchObject({
      agent: { id: engineer.id, type: 'SENIOR_ENGINEER' },
      project: { id: project.id },
      task: { id: task.id },
    });
    const [local] = await s.sql<{ id: string }>(`SELECT id FROM providers WHERE name = 'Steward Local'`);
    expect((await started(dev!, { projectId: project.id, providerId: local!.id })).provider).toMatchObject({
      id: local!.id,
      name: 'Steward Local',
    });
  });

  it('refuses what the user may not use: a hidden project or task (NOT_FOUND), a VIEWER role (FORBIDDEN), a mismatched task, an inactive provider', async () => {
    const {
      project,
      task,
      members: [viewer, dev],
    } = await team('VIEWER', 'CONTRIBUTOR');
    const other = await team();
    const stranger = await user();
    expect(codes(await start(stranger, { projectId: project.id }))).toEqual(['NOT_FOUND']);
    expect(codes(await start(stranger, { taskId: task.id }))).toEqual(['NOT_FOUND']);
    expect(codes(await start(viewer!, { projectId: project.id }))).toEqual(['FORBIDDEN']);
    expect(codes(await start(viewer!, { taskId: task.id }))).toEqual(['FORBIDDEN']);
    expect(codes(await start(dev!, { projectId: project.id, taskId: other.task.id }))).toEqual(['NOT_FOUND']);
    expect(codes(await start(other.owner, { projectId: other.project.id, taskId: task.id }))).toEqual(['NOT_FOUND']);
    expect(codes(await start(admin, { projectId: other.project.id, taskId: task.id }))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await start(dev!, { agentId: randomUUID() }))).toEqual(['NOT_FOUND']);
    expect(codes(await start(dev!, { providerId: randomUUID() }))).toEqual(['NOT_FOUND']);
    expect(codes(await start(dev!, { agentId: 'not-a-uuid' }))).toEqual(['BAD_USER_INPUT']);

    const [inactive] = await s.sql<{ id: string }>(
      `INSERT INTO providers (id, name, provider_type, model_name, active, input_cost_per1k, output_cost_per1k) VALUES ($1, $2, 'OPENAI', 'gpt-4o-mini', false, 0.001, 0.002) RETURNING id`,
      [randomUUID(), unique('retired-')],
    );
    expect(codes(await start(dev!, { providerId: inactive!.id }))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await start(await user('OBSERVER')))).toEqual(['FORBIDDEN']);
  });
});

describe('sending messages through the local provider', () => {
  it("returns the assistant's reply, stores both messages, and streams the reply to the owner only", async () => {
    const [me, other] = [await user(), await user()];
    const c = await started(me);
    const mine = await started(other);
    const listeners = busListeners(s);
    const added = follow(
      subscribe<MessageAddedSubscription>(socketOf(me), MessageAddedDocument, { conversationId: c.id }),
    );
    const stream = follow(
      subscribe<MessageStreamSubscription>(socketOf(me), MessageStreamDocument, { conversationId: c.id }),
    );
    const otherWs = socketOf(other); // one connection, so one sentinel proves both subscriptions heard nothing
    const othersAdded = follow(
      subscribe<MessageAddedSubscription>(otherWs, MessageAddedDocument, { conversationId: mine.id }),
    );
    const othersStream = follow(
      subscribe<MessageStreamSubscription>(otherWs, MessageStreamDocument, { conversationId: mine.id }),
    );
    await listeners.registered(4);

    const content = 'How do I keep curly hair hydrated in winter?';
    const answer = await sent(me, c.id, content);
    // No provider named: the one serving the agent's default model (steward-local-1) answers.
    expect(answer).toMatchObject({
      role: 'ASSISTANT',
      model: 'steward-local-1',
      provider: { name: 'Steward Local' },
      conversation: { id: c.id },
      knowledgeEntryIds: [],
    });
    expect(answer.content).toContain('Steward Local');
    expect(answer.content).toContain(content.slice(0, 20));
    expect(answer.promptTokens).toBeGreaterThan(0);
    expect(answer.completionTokens).toBeGreaterThan(0);
    expect(answer.latencyMs).toBeGreaterThanOrEqual(0);

    // Stored: the user's message, then the reply.
    expect((await storedMessages(c.id)).map((m) => [m.role, m.content])).toEqual([
      ['USER', content],
      ['ASSISTANT', answer.content],
    ]);
    const history = (await conversationOf(me, c.id))!.messages;
    expect(history.totalCount).toBe(2);
    expect(history.edges.map((e) => [e.node.role, e.node.content])).toEqual([
      ['USER', content],
      ['ASSISTANT', answer.content],
    ]);
    expect(history.edges[0]!.node).toMatchObject({ promptTokens: null, completionTokens: null });

    // Live: both messages, in order, and the reply chunk by chunk, ending with done.
    const first = (await added.next()).messageAdded;
    const second = (await added.next()).messageAdded;
    expect([first.role, first.content, second.id, second.role]).toEqual(['USER', content, answer.id, 'ASSISTANT']);
    const chunks = await reply(stream);
    expect(chunks.map((ch) => ch.index)).toEqual(chunks.map((_, i) => i));
    expect(chunks.length).toBeGreaterThan(2);
    expect(chunks.map((ch) => ch.delta).join('')).toBe(answer.content);
    expect(chunks.every((ch) => ch.conversationId === c.id && ch.messageId === answer.id && ch.error === null)).toBe(
      true,
    );
    expect(chunks.at(-1)).toMatchObject({ done: true, delta: '' });

    // Nobody else hears it.
    await sentinel(s, otherWs, other);
    expect(othersAdded.received).toEqual([]);
    expect(othersStream.received).toEqual([]);

    // Metered: one SUCCESS log with the agent's instructions as its system message.
    const logs = await promptLogs(c.id);
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatchObject({ status: 'SUCCESS', prompt: content });
    expect(logs[0]!.system_message).toContain("You are Steward's Assistant");
    const [cost] = await s.sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM cost_records WHERE conversation_id = $1`,
      [c.id],
    );
    expect(cost!.n).toBe(1);
  });

  it("gives the model the conversation's history and pages it oldest first with keyset cursors", async () => {
    const me = await user();
    const c = await started(me, { agentId: (await agentOf('ARCHITECT')).id });
    const replies = [];
    for (const q of ['Where should quotas live?', 'And the cost records?', 'Thanks, summarise it.'])
      replies.push(await sent(me, c.id, q));
    expect(replies[0]!.content).not.toContain('earlier message');
    expect(replies[1]!.content).toContain('after 2 earlier messages');
    expect(replies[2]!.content).toContain('after 4 earlier messages');

    const all = (await storedMessages(c.id)).map((m) => m.id);
    expect(all).toHaveLength(6);
    const p1 = (await conversationOf(me, c.id, { first: 4 }))!.messages;
    expect(p1.edges.map((e) => e.node.id)).toEqual(all.slice(0, 4));
    expect(p1.pageInfo.hasNextPage).toBe(true);
    const p2 = (await conversationOf(me, c.id, { first: 4, after: p1.pageInfo.endCursor! }))!.messages;
    expect(p2.edges.map((e) => e.node.id)).toEqual(all.slice(4));
    expect(p2.pageInfo.hasNextPage).toBe(false);
    const tail = (await conversationOf(me, c.id, { last: 2 }))!.messages;
    expect(tail.edges.map((e) => e.node.id)).toEqual(all.slice(4));
    expect(tail.pageInfo.hasPreviousPage).toBe(true);

    // The conversation moved to the top of the owner's list.
    const older = await started(me);
    await sent(me, c.id, 'One more thing.');
    const list = (await ok(s.url, ConversationsDocument, { first: 10 }, me.token)).conversations;
    expect(list.edges.map((e) => e.node.id)).toEqual([c.id, older.id]);
    expect(list.edges[0]!.node.messages.totalCount).toBe(8);
  });

  it('adds the best-matching active knowledge to ASSISTANT calls, and records the entries on the reply', async () => {
    const me = await user();
    const topic = `zq${randomBytes(4).toString('hex')}`; // a word no other entry contains
    const entry = async (title: string, content: string) =>
      (
        await ok(
          s.url,
          CreateKnowledgeEntryDocument,
          { input: { title, content, category: 'hair_education' } },
          admin.token,
        )
      ).createKnowledgeEntry;
    // ts_rank over the OR-ed terms: more of the message's words first (keep, curly, hair, hydrated, winter, the topic).
    const best = await entry(
      `${topic} hydration routine`,
      `Keep ${topic} curly hair hydrated in winter: a leave-in conditioner, a mist, a humidifier at night.`,
    );
    const good = await entry(`${topic} in the cold`, `In winter, ${topic} hair dries out: deep-condition it weekly.`);
    const fair = await entry('Protective styles', `Braids and twists protect ${topic} hair.`);
    const retired = await entry(
      `${topic} old advice`,
      `Keep ${topic} curly hair hydrated in winter with petroleum jelly (outdated).`,
    );
    await ok(s.url, DeactivateKnowledgeEntryDocument, { id: retired.id }, admin.token);
    await entry('Business growth', 'To grow your salon business, track repeat customers.');

    const c = await started(me);
    const question = `How do I keep ${topic} curly hair hydrated in winter?`;
    const answer = await sent(me, c.id, question);
    expect(answer.knowledgeEntryIds).toEqual([best.id, good.id, fair.id]);
    expect(answer.knowledgeEntries.map((k) => k.id)).toEqual(expect.arrayContaining([best.id, good.id, fair.id]));
    const [log] = await promptLogs(c.id);
    expect(log!.system_message).toContain(`[1] ${topic} hydration routine (hair_education)`);
    expect(log!.system_message).toContain('Protective styles');
    expect(log!.system_message).not.toContain('outdated');
    const [stored] = await s.sql<{ ids: string[] }>(`SELECT knowledge_entry_ids AS ids FROM messages WHERE id = $1`, [
      answer.id,
    ]);
    expect([...stored!.ids].sort()).toEqual([...answer.knowledgeEntryIds].sort());

    // Other agents work from their own instructions only.
    const engineer = await started(me, { agentId: (await agentOf('SENIOR_ENGINEER')).id });
    expect((await sent(me, engineer.id, question)).knowledgeEntryIds).toEqual([]);
    const [engineerLog] = await promptLogs(engineer.id);
    expect(engineerLog!.system_message).toContain('You are the Senior Engineer');
    expect(engineerLog!.system_message).not.toContain('hydration routine');

    // Nothing matches: no knowledge, and the assistant still answers.
    expect((await sent(me, c.id, 'Quelle heure est-il à Tokyo ?')).knowledgeEntryIds).toEqual([]);
  });

  it('stores nothing of a refused call, and ends the stream with the error', async () => {
    const me = await user();
    const quota = await gql(
      s.url,
      'mutation($input: SetUserQuotaInput!) { setUserQuota(input: $input) { monthlyMessageLimit } }',
      { input: { userId: me.id, monthlyMessageLimit: 1 } },
      admin.token,
    );
    expect(quota.errors).toBeUndefined();
    const c = await started(me);
    const listeners = busListeners(s);
    const stream = follow(
      subscribe<MessageStreamSubscription>(socketOf(me), MessageStreamDocument, { conversationId: c.id }),
    );
    await listeners.registered(1);

    await sent(me, c.id, 'The first message is within the limit.');
    await reply(stream);
    const refused = await send(me, c.id, 'The second is not.');
    expect(codes(refused)).toEqual(['QUOTA_EXCEEDED']);
    expect((await reply(stream)).at(-1)).toMatchObject({ done: true, error: 'QUOTA_EXCEEDED', delta: '' });
    expect((await storedMessages(c.id)).map((m) => m.content)).toEqual([
      'The first message is within the limit.',
      expect.stringContaining('Steward Local'),
    ]);
    expect((await promptLogs(c.id)).map((l) => l.status)).toEqual(['SUCCESS', 'BLOCKED']);
  });

  it('refuses empty and over-long messages, and messages in an archived conversation', async () => {
    const me = await user();
    const c = await started(me);
    expect(codes(await send(me, c.id, ''))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await send(me, c.id, '   \n  '))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await send(me, c.id, 'x'.repeat(32_001)))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await send(me, 'nope', 'hello'))).toEqual(['BAD_USER_INPUT']);

    const archived = (await ok(s.url, ArchiveConversationDocument, { id: c.id }, me.token)).archiveConversation;
    expect(archived).toMatchObject({ id: c.id, active: false });
    expect((await ok(s.url, ArchiveConversationDocument, { id: c.id }, me.token)).archiveConversation.active).toBe(
      false,
    );
    expect(codes(await send(me, c.id, 'Anyone there?'))).toEqual(['CONFLICT']);
    expect(await storedMessages(c.id)).toEqual([]);
    expect(await promptLogs(c.id)).toEqual([]); // refused before the pipeline: no AI call was attempted
    const active = (await ok(s.url, ConversationsDocument, { first: 10, where: { active: true } }, me.token))
      .conversations;
    expect(active.totalCount).toBe(0);
  });
});

describe('who may see and use a conversation', () => {
  it('hides a conversation from everyone but its owner and admins; only the owner sends in it', async () => {
    const [me, other] = [await user(), await user()];
    const c = await started(me);
    await sent(me, c.id, 'Private question.');

    expect(await conversationOf(other, c.id)).toBeNull();
    expect(codes(await send(other, c.id, 'Let me in'))).toEqual(['NOT_FOUND']);
    expect(codes(await gql(s.url, ArchiveConversationDocument, { id: c.id }, other.token))).toEqual(['NOT_FOUND']);
    expect((await ok(s.url, ConversationsDocument, { first: 50 }, other.token)).conversations.totalCount).toBe(0);
    expect(
      codes(await gql(s.url, ConversationsDocument, { first: 50, where: { userId: me.id } }, other.token)),
    ).toEqual(['FORBIDDEN']);
    expect(
      codes(await gql(s.url, ConversationsDocument, { first: 50, where: { allUsers: true } }, other.token)),
    ).toEqual(['FORBIDDEN']);

    // Admins read it (and list anyone's), but the calls in it are the owner's alone.
    expect((await conversationOf(admin, c.id))!.messages.totalCount).toBe(2);
    expect(
      (
        await ok(s.url, ConversationsDocument, { first: 50, where: { userId: me.id } }, admin.token)
      ).conversations.edges.map((e) => e.node.id),
    ).toEqual([c.id]);
    const everyone = (await ok(s.url, ConversationsDocument, { first: 100, where: { allUsers: true } }, admin.token))
      .conversations;
    expect(everyone.edges.map((e) => e.node.id)).toContain(c.id);
    expect(
      (await ok(s.url, ConversationsDocument, { first: 50 }, admin.token)).conversations.edges.map((e) => e.node.id),
    ).not.toContain(c.id); // own by default
    expect(codes(await send(admin, c.id, 'Admin here'))).toEqual(['FORBIDDEN']);
    expect((await storedMessages(c.id)).length).toBe(2);
  });

  it('lets only the owner subscribe: others get NOT_FOUND, admins FORBIDDEN', async () => {
    const [me, other] = [await user(), await user()];
    const c = await started(me);
    for (const doc of [MessageAddedDocument, MessageStreamDocument]) {
      expect(codes(await wsExecute(socketOf(other), doc, { conversationId: c.id }))).toEqual(['NOT_FOUND']);
      expect(codes(await wsExecute(socketOf(admin), doc, { conversationId: c.id }))).toEqual(['FORBIDDEN']);
      expect(codes(await wsExecute(socketOf(me), doc, { conversationId: randomUUID() }))).toEqual(['NOT_FOUND']);
    }
  });

  it('stops a member removed from the project from going on with a conversation about it', async () => {
    const {
      owner,
      project,
      members: [dev],
    } = await team('CONTRIBUTOR');
    const c = await started(dev!, { projectId: project.id });
    await sent(dev!, c.id, 'What should we build first?');
    await ok(s.url, RemoveProjectMemberDocument, { input: { projectId: project.id, userId: dev!.id } }, owner.token);
    expect(codes(await send(dev!, c.id, 'And next?'))).toEqual(['NOT_FOUND']);
    const mine = await conversationOf(dev!, c.id);
    expect(mine).toMatchObject({ id: c.id, project: null }); // still theirs to read; the project is no longer visible
    expect(mine!.messages.totalCount).toBe(2);
  });
});

describe('reading conversations', () => {
  /** The statements sent through the read pool while `fn` runs. */
  async function statementsOf(fn: () => Promise<unknown>) {
    const pool = s.app.runtime.db.pool as unknown as { query: (...args: unknown[]) => unknown };
    const original = pool.query;
    let n = 0;
    pool.query = function (this: unknown, ...args: unknown[]) {
      n++;
      return original.apply(this, args);
    };
    try {
      await fn();
    } finally {
      pool.query = original;
    }
    return n;
  }
  const DEEP = `query($first: Int) { conversations(first: $first) { totalCount edges { node {
      id user { id } agent { type currentLoad } project { id name } task { id title }
      messages(first: 10) { totalCount edges { node { id role content provider { name } conversation { id } knowledgeEntries { id title } } } } } } } }`;

  it('loads a deep list with as many statements for three conversations as for one', async () => {
    const {
      project,
      task,
      members: [a, b],
    } = await team('CONTRIBUTOR', 'CONTRIBUTOR');
    const k = (
      await ok(
        s.url,
        CreateKnowledgeEntryDocument,
        { input: { title: 'Loader knowledge', content: 'Zebra crossings and loaders.' } },
        admin.token,
      )
    ).createKnowledgeEntry;
    await assign(task.id, a!);
    await assign(task.id, b!);
    const one = await started(a!, { taskId: task.id });
    await sent(a!, one.id, 'Zebra loaders?');
    for (let i = 0; i < 3; i++) {
      const c = await started(b!, { projectId: project.id, taskId: task.id });
      await sent(b!, c.id, 'Zebra crossings, please.');
      await sent(b!, c.id, 'And loaders?');
    }
    const forOne = await statementsOf(() => ok(s.url, DEEP, { first: 10 }, a!.token));
    const forThree = await statementsOf(async () => {
      const r = await ok(s.url, DEEP, { first: 10 }, b!.token);
      expect(r.conversations.totalCount).toBe(3);
      expect(r.conversations.edges[0].node.messages.edges[1].node.knowledgeEntries).toEqual([
        { id: k.id, title: 'Loader knowledge' },
      ]);
    });
    expect(forThree).toBe(forOne);
    expect(forOne).toBeLessThanOrEqual(12);
  });
});
