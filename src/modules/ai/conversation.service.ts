import sql, { type Sql } from 'sql-template-tag';

import type { Config } from '../../config.js';
import type { SqlClient } from '../../db/sql.js';
import type { EventBus } from '../../events/bus.js';
import { paginate, type Connection, type PageArgs } from '../../shared/connection.js';
import {
  AppError,
  BadInputError,
  ConflictError,
  ForbiddenError,
  NotFoundError,
  requireUuid,
} from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import type { Logger } from '../../shared/logger.js';
import { and, readModel } from '../../shared/read-model.js';
import { inTransaction, type Scope, type Viewer } from '../../shared/scope.js';
import { isHumanAdmin } from '../../shared/viewer.js';
import type { AuditService } from '../audit/index.js';
import type {
  ChatMessage,
  MeteredResult,
  MeteringService,
  ProviderService,
  ResolvedProvider,
} from '../billing/index.js';
import type { ModelAccess } from '../model-access/index.js';
import type { ProjectService } from '../projects/index.js';
import { ProjectRole } from '../projects/project-member.entity.js';
import type { TaskPolicy } from '../work/index.js';
import type { AgentToolbox } from './agent-tools.js';
import { AgentType } from './agent-type.js';
import { Conversation } from './conversation.entity.js';
import { MESSAGE_ADDED, MESSAGE_CHUNK, type MessageAddedEvent, type MessageChunkEvent } from './conversation.events.js';
import { MAX_MESSAGE_CHARS, type ConversationWhere, type StartConversationInput } from './conversation.inputs.js';
import type { GovernanceService } from './governance.js';
import type { KnowledgeService, RetrievedEntry } from './knowledge.service.js';
import { Message, MessageRole } from './message.entity.js';
import { ToolTurn } from './tool-turn.js';

/** How many earlier messages of the conversation go into each call's context (the newest ones). */
export const HISTORY_MESSAGES = 20;
/** How many knowledge entries an ASSISTANT call gets as context at most (the best by ts_rank). */
export const KNOWLEDGE_MATCHES = 3;
/**
 * The largest delta of one streamed chunk, in UTF-16 code units. Even if every one were
 * a control character JSON escapes to six bytes, a chunk stays far below PostgreSQL's
 * 8 KB NOTIFY payload limit (see src/events/bus.ts).
 */
export const MAX_CHUNK_CHARS = 1000;

const ROLE: Record<MessageRole, ChatMessage['role']> = {
  [MessageRole.USER]: 'user',
  [MessageRole.ASSISTANT]: 'assistant',
  [MessageRole.SYSTEM]: 'system',
};

interface ConversationRow {
  id: string;
  user_id: string;
  project_id: string | null;
  task_id: string | null;
  provider_id: string | null;
  active: boolean;
  agent_type: AgentType;
  agent_name: string;
  agent_active: boolean;
  system_prompt: string;
  /** An active provider serving the agent's default model, if any. */
  model_provider_id: string | null;
}

/** One user message being answered: what its rounds share, and the reply once stored. */
interface Exchange {
  viewer: Viewer;
  conv: ConversationRow;
  /** The user's message, trimmed. */
  content: string;
  system: string;
  knowledge: RetrievedEntry[];
  userMessageId: string;
  assistantMessageId: string;
  stream: ReplyStream;
  /** The provider chosen before the first round (with model access rules), else undefined: the pipeline chooses. */
  resolved: ResolvedProvider | undefined;
  maxRounds: number;
  turn: ToolTurn;
  /** Set by the store, in the transaction that commits the exchange: the turn has ended. */
  reply: Message | undefined;
}

export interface ConversationDeps {
  db: SqlClient;
  bus: EventBus;
  audit: AuditService;
  logger: Logger;
  projects: ProjectService;
  taskPolicy: TaskPolicy;
  knowledge: KnowledgeService;
  /** The metered pipeline (src/modules/billing/metering.service.ts): every AI call goes through it. */
  metering: Pick<MeteringService, 'call'>;
  governance: GovernanceService;
  /** Who may use which models (src/modules/model-access), checked on the provider the call will use. */
  modelAccess: Pick<ModelAccess, 'restricts' | 'require'>;
  providers: Pick<ProviderService, 'resolveCall'>;
  config: Pick<Config, 'AGENT_MAX_TOOL_ROUNDS'>;
  /** The MCP tools the agent's model may call (the mcp module's, through the same gate as callMcpTool). */
  agentTools: AgentToolbox;
}

/**
 * Conversations of a user with an agent, and the exchange of
 * messages through the metered pipeline.
 *
 * Who may do what:
 * - A conversation is its owner's. Admins read everyone's (DESIGN: ADMIN sees
 *   everything) and may archive them, but only the owner sends messages in it (the calls
 *   are metered and governed as the owner's) and only the owner hears it live.
 * - Anyone else: the conversation does not exist for them (NOT_FOUND).
 * - Starting one about a project or task needs CONTRIBUTOR or higher there (an AI call
 *   in a project is work in it), and so does every later message: a member removed from
 *   the project can no longer talk about it.
 */
export class ConversationService {
  constructor(private readonly deps: ConversationDeps) {}

  // ---------- reads ----------

  /** SQL condition over a conversations row aliased `t`: the viewer may read it. */
  visible(viewer: Viewer): Sql {
    return isHumanAdmin(viewer) ? sql`TRUE` : sql`t.user_id = ${viewer.userId}::uuid`;
  }

  /** Your conversations, most recently active first; admins may ask for a user's or everyone's. */
  list(
    viewer: Viewer,
    fields: Iterable<string>,
    where: ConversationWhere,
    page: PageArgs,
  ): Promise<Connection<Record<string, unknown>>> {
    const userId = where.userId ? requireUuid(where.userId, 'userId') : null;
    if ((where.allUsers || (userId && userId !== viewer.userId)) && !isHumanAdmin(viewer))
      throw new ForbiddenError("Only administrators list other people's conversations");
    const owner = userId ?? (where.allUsers ? null : viewer.userId);
    return paginate(
      this.deps.db,
      {
        model: readModel(Conversation),
        fields,
        where: and([
          owner ? sql`t.user_id = ${owner}::uuid` : null,
          where.agentId ? sql`t.agent_id = ${requireUuid(where.agentId, 'agentId')}::uuid` : null,
          where.projectId ? sql`t.project_id = ${requireUuid(where.projectId, 'projectId')}::uuid` : null,
          where.taskId ? sql`t.task_id = ${requireUuid(where.taskId, 'taskId')}::uuid` : null,
          where.active != null ? sql`t.active = ${where.active}` : null,
        ]),
        sort: { property: 'updatedAt', direction: 'DESC', type: 'timestamptz' },
      },
      page,
    );
  }

  /** For live subscriptions: the conversation must be the viewer's own (admins included: NOT theirs to hear). */
  async requireOwn(viewer: Viewer, id: string): Promise<void> {
    const conversationId = requireUuid(id, 'conversationId');
    const row = await this.deps.db.one<{ user_id: string }>(
      sql`SELECT user_id FROM conversations WHERE id = ${conversationId}::uuid`,
    );
    this.own(viewer, conversationId, row, "Only the conversation's owner follows it live");
  }

  // ---------- writes ----------

  async start(scope: Scope, viewer: Viewer, input: StartConversationInput): Promise<Conversation> {
    const agentId = input.agentId ? requireUuid(input.agentId, 'agentId') : null;
    const agent = await this.deps.db.one<{ id: string; type: AgentType; name: string; active: boolean }>(
      agentId
        ? sql`SELECT id, type, name, active FROM agents WHERE id = ${agentId}::uuid`
        : sql`SELECT id, type, name, active FROM agents WHERE type = ${AgentType.ASSISTANT}`,
    );
    if (!agent) throw new NotFoundError('Agent', agentId ?? AgentType.ASSISTANT);
    if (!agent.active) throw new ConflictError(`The agent ${agent.name} is inactive`);

    let projectId = input.projectId ? requireUuid(input.projectId, 'projectId') : null;
    const taskId = input.taskId ? requireUuid(input.taskId, 'taskId') : null;
    if (projectId) await this.deps.projects.requireWritable(viewer, projectId, ProjectRole.CONTRIBUTOR);
    if (taskId) {
      const task = await this.deps.taskPolicy.require(viewer, taskId, ProjectRole.CONTRIBUTOR);
      if (projectId && task.projectId !== projectId)
        throw BadInputError.field('taskId', "the task must belong to the conversation's project");
      if (!projectId && task.projectId) {
        projectId = task.projectId;
        await this.deps.projects.requireWritable(viewer, projectId, ProjectRole.CONTRIBUTOR);
      }
    }
    await this.deps.governance.bind(viewer, taskId);

    const providerId = input.providerId ? requireUuid(input.providerId, 'providerId') : null;
    if (providerId) {
      const p = await this.deps.db.one<{ active: boolean }>(
        sql`SELECT active FROM providers WHERE id = ${providerId}::uuid`,
      );
      if (!p) throw new NotFoundError('Provider', providerId);
      if (!p.active) throw BadInputError.field('providerId', 'the provider is inactive');
    }

    return inTransaction(scope, async (tx) => {
      const c = tx.em.create(Conversation, {
        user: viewer.userId,
        agent: agent.id,
        project: projectId,
        task: taskId,
        provider: providerId,
        title: input.title?.trim() || null,
        context: { agentType: agent.type },
      });
      await tx.em.flush();
      this.deps.audit.record(tx, {
        action: 'conversation.start',
        entityType: 'Conversation',
        entityId: c.id,
        after: { agentType: agent.type, projectId, taskId, providerId },
      });
      return c;
    });
  }

  /**
   * Sends the user's message and returns the assistant's reply. The context is the
   * agent's system prompt (for the ASSISTANT, plus the knowledge entries that best match
   * the message), the last HISTORY_MESSAGES messages, then the new message. It is asked
   * of the conversation's provider, else of an active provider serving the agent's default
   * model (platform-provided first), else of the platform's default. The call goes
   * through the metered pipeline; its `persist` stores both messages in the settlement
   * transaction, so the messages, the usage and the cost commit together, and a refused
   * or failed call stores nothing of the exchange (its PromptLog records it).
   *
   * Concurrent messages in one conversation are not serialised: each is answered with
   * the history committed when it started, and both messages' ids are chosen before the
   * call, so history reads in the order the messages were sent.
   */
  async send(scope: Scope, viewer: Viewer, input: { conversationId: string; content: string }): Promise<Message> {
    const conversationId = requireUuid(input.conversationId, 'conversationId');
    const content = input.content.trim();
    if (!content) throw BadInputError.field('content', 'must not be empty');
    if (content.length > MAX_MESSAGE_CHARS)
      throw BadInputError.field('content', `must be at most ${MAX_MESSAGE_CHARS} characters`);

    const conv = await this.requireSendable(viewer, conversationId);
    const exchange = await this.prepareExchange(scope, viewer, conv, content);
    try {
      // One model call per round, each through the metered pipeline (reserved, charged, logged on its own);
      // the tools a round's answer asks for run between two calls, never inside a settlement.
      for (let round = 1; !exchange.reply; round++) await this.runRound(scope, exchange, round);
    } catch (err) {
      await exchange.stream.end(err instanceof AppError ? err.code : 'INTERNAL_SERVER_ERROR');
      throw err;
    }
    await exchange.stream.end(null);
    return exchange.reply;
  }

  /** The owner or an admin; archiving twice changes nothing. Archived conversations take no new messages. */
  async archive(scope: Scope, viewer: Viewer, id: string): Promise<Conversation> {
    const conversationId = requireUuid(id);
    return inTransaction(scope, async (tx) => {
      const c = await tx.em.findOne(Conversation, conversationId);
      if (!c || (c.user.id !== viewer.userId && !isHumanAdmin(viewer)))
        throw new NotFoundError('Conversation', conversationId);
      if (!c.active) return c;
      c.active = false;
      this.deps.audit.record(tx, {
        action: 'conversation.archive',
        entityType: 'Conversation',
        entityId: c.id,
        before: { active: true },
        after: { active: false },
      });
      return c;
    });
  }

  // ---------- helpers ----------

  /** The conversation, when the viewer may send a message in it now. */
  private async requireSendable(viewer: Viewer, conversationId: string): Promise<ConversationRow> {
    const row = await this.deps.db.one<ConversationRow>(sql`
      SELECT c.id, c.user_id, c.project_id, c.task_id, c.provider_id, c.active,
             a.type AS agent_type, a.name AS agent_name, a.active AS agent_active, a.system_prompt,
             (SELECT p.id FROM providers p WHERE p.active AND p.model_name = a.default_model
               ORDER BY p.platform_provided DESC, p.id LIMIT 1) AS model_provider_id
        FROM conversations c JOIN agents a ON a.id = c.agent_id
       WHERE c.id = ${conversationId}::uuid`);
    const conv = this.own(viewer, conversationId, row, "Only the conversation's owner sends messages in it");
    if (!conv.active) throw new ConflictError('The conversation is archived');
    if (!conv.agent_active) throw new ConflictError(`The agent ${conv.agent_name} is inactive`);
    if (conv.project_id) await this.deps.projects.requireWritable(viewer, conv.project_id, ProjectRole.CONTRIBUTOR);
    if (conv.task_id) await this.deps.taskPolicy.require(viewer, conv.task_id, ProjectRole.CONTRIBUTOR);
    // Checked at every call, not only at the start: an assignment ends, a setting changes.
    await this.deps.governance.bind(viewer, conv.task_id);
    return conv;
  }

  /** Everything the rounds of one message need: its context, the reply's ids and stream, the provider and tools. */
  private async prepareExchange(
    scope: Scope,
    viewer: Viewer,
    conv: ConversationRow,
    content: string,
  ): Promise<Exchange> {
    const conversationId = conv.id;
    const [history, knowledge] = await Promise.all([
      this.deps.db.query<{ role: MessageRole; content: string }>(sql`
        SELECT role, content FROM (
          SELECT id, role, content FROM messages WHERE conversation_id = ${conversationId}::uuid ORDER BY id DESC LIMIT ${HISTORY_MESSAGES}) h
         ORDER BY id`),
      conv.agent_type === AgentType.ASSISTANT
        ? this.deps.knowledge.bestMatches(content, KNOWLEDGE_MATCHES)
        : Promise.resolve([]),
    ]);
    const system = systemMessage(conv.system_prompt, knowledge);
    const messages: ChatMessage[] = [
      { role: 'system', content: system },
      ...history.map((m) => ({ role: ROLE[m.role], content: m.content })),
      { role: 'user', content },
    ];

    // Both ids now, in this order: UUIDv7 ids sort by creation, and history is read by id.
    const userMessageId = newId();
    const assistantMessageId = newId();
    const stream = new ReplyStream(this.deps.bus, this.deps.logger, {
      userId: viewer.userId,
      conversationId,
      messageId: assistantMessageId,
    });
    // With model access rules, the provider is chosen now, so that the rule is checked on the model the call
    // will use, and a fallback can only be another provider of that model.
    const resolved = (await this.deps.modelAccess.restricts())
      ? await this.deps.providers.resolveCall(viewer.userId, conv.provider_id ?? conv.model_provider_id)
      : undefined;
    if (resolved)
      await this.deps.modelAccess.require(resolved.provider.modelName, { ...viewer, projectId: conv.project_id });
    const maxRounds = this.deps.config.AGENT_MAX_TOOL_ROUNDS;
    const toolset = (await this.offersTools(conv, maxRounds))
      ? await this.deps.agentTools.offer(scope, viewer, conv.project_id)
      : null;
    const turn = new ToolTurn(messages, toolset);
    return {
      viewer,
      conv,
      content,
      system,
      knowledge,
      userMessageId,
      assistantMessageId,
      stream,
      resolved,
      maxRounds,
      turn,
      reply: undefined,
    };
  }

  /**
   * One round of the turn: a model call through the metered pipeline whose settlement stores the exchange when
   * the answer is the reply; when it asks for tools, they run after it (a tool waiting for approval ends the turn).
   */
  private async runRound(scope: Scope, exchange: Exchange, round: number): Promise<void> {
    const { viewer, conv, turn, stream, resolved, maxRounds } = exchange;
    const r = await this.deps.metering.call(
      scope,
      {
        viewer,
        prompt: exchange.content,
        // Every round carries the same user message: governance classifies it once, at the first.
        followUp: round > 1,
        messages: turn.context(),
        providerId: conv.provider_id ?? conv.model_provider_id,
        ...(resolved ? { resolved, model: resolved.provider.modelName } : {}),
        conversationId: conv.id,
        projectId: conv.project_id,
        taskId: conv.task_id,
        agentType: conv.agent_type,
        systemMessage: exchange.system,
        passThrough: turn.passThrough(),
        onDelta: (text) => stream.push(text),
      },
      async (tx, r) => {
        const asks = turn.asks(r);
        if (asks && round <= maxRounds) return; // its tools run next; the reply is a later round's
        turn.answered(r);
        if (asks) turn.notRun(r, round, 'the turn ran out of tool rounds');
        await this.storeExchange(
          tx,
          exchange,
          r,
          asks
            ? `[Stopped: the model still asked for tools after ${maxRounds} rounds of tool calls (AGENT_MAX_TOOL_ROUNDS); they were not run.]`
            : '',
        );
      },
    );
    if (exchange.reply) return;
    turn.answered(r);
    const waiting = await turn.runTools(r, round);
    if (waiting) {
      // A tool waits for a human: the turn ends here, saying so; asked again once approved, it runs once.
      const note = `[Waiting for approval: ${waiting.name} needs a human's approval (approval ${waiting.approvalId}). Ask again once it is approved and the call will run.]`;
      await inTransaction(scope, (tx) => this.storeExchange(tx, exchange, null, note));
    } else if (r.content) stream.push('\n\n');
  }

  /** Stores the exchange: both messages, the turn's usage and tool calls, its audit entry; messageAdded at commit. */
  private async storeExchange(tx: Scope, exchange: Exchange, last: MeteredResult | null, note: string): Promise<void> {
    const { conv, turn, stream, knowledge, userMessageId, assistantMessageId } = exchange;
    const conversationId = conv.id;
    if (note) stream.push(turn.hasText ? `\n\n${note}` : note);
    tx.em.create(Message, {
      id: userMessageId,
      conversation: conversationId,
      role: MessageRole.USER,
      content: exchange.content,
    });
    // The turn's usage is the reply's: every round's prompt tokens count the whole context, not the user's message alone.
    exchange.reply = tx.em.create(Message, {
      id: assistantMessageId,
      conversation: conversationId,
      role: MessageRole.ASSISTANT,
      content: turn.text(note),
      promptTokens: turn.promptTokens,
      completionTokens: turn.completionTokens,
      model: last?.model ?? turn.model,
      provider: last?.providerId ?? turn.providerId,
      latencyMs: turn.latencyMs,
      knowledgeEntryIds: knowledge.map((k) => k.id),
      toolCalls: turn.log.length ? turn.log : null,
    });
    await tx.em.flush();
    await tx.em.execute(`UPDATE conversations SET updated_at = now() WHERE id = ?`, [conversationId]);
    this.deps.audit.record(tx, {
      action: 'conversation.sendMessage',
      entityType: 'Conversation',
      entityId: conversationId,
      after: {
        userMessageId,
        assistantMessageId,
        promptLogId: turn.promptLogIds.at(-1) ?? null,
        knowledgeEntryIds: knowledge.map((k) => k.id),
        ...(turn.log.length
          ? {
              promptLogIds: turn.promptLogIds,
              toolCalls: turn.log.map((t) => ({ name: t.name, status: t.status, mcpToolCallId: t.mcpToolCallId })),
            }
          : {}),
      },
    });
    // Every streamed chunk is out before messageAdded can be delivered (at this commit).
    await stream.drain();
    for (const messageId of [userMessageId, assistantMessageId]) {
      await this.deps.bus.publish(tx.em, MESSAGE_ADDED, {
        messageId,
        conversationId,
        userId: exchange.viewer.userId,
      } satisfies MessageAddedEvent);
    }
  }
  /**
   * Whether the agent's model is offered MCP tools this turn: tools are a project's (its
   * allow list), and only an OpenAI-compatible provider is sent them (the function-calling
   * format); the provider is the conversation's, else the one serving the agent's model.
   */
  private async offersTools(conv: ConversationRow, maxRounds: number): Promise<boolean> {
    const providerId = conv.provider_id ?? conv.model_provider_id;
    if (maxRounds < 1 || !conv.project_id || !providerId) return false;
    const p = await this.deps.db.one<{ provider_type: string }>(
      sql`SELECT provider_type FROM providers WHERE id = ${providerId}::uuid`,
    );
    return p?.provider_type === 'OPENAI';
  }

  /** The row when it is the viewer's own; NOT_FOUND for whoever may not see it, FORBIDDEN (`refusal`) for an admin who may but is not its owner. */
  private own<T extends { user_id: string }>(viewer: Viewer, id: string, row: T | undefined, refusal: string): T {
    if (!row || (row.user_id !== viewer.userId && !isHumanAdmin(viewer))) throw new NotFoundError('Conversation', id);
    if (row.user_id !== viewer.userId) throw new ForbiddenError(refusal);
    return row;
  }
}

/** The agent's system prompt, then (ASSISTANT) the retrieved knowledge, numbered so the answer can cite it. */
export function systemMessage(agentPrompt: string, knowledge: readonly RetrievedEntry[]): string {
  if (!knowledge.length) return agentPrompt;
  const entries = knowledge
    .map((k, i) => `[${i + 1}] ${k.title}${k.category ? ` (${k.category})` : ''}\n${k.content}`)
    .join('\n\n');
  return `${agentPrompt}\n\nKnowledge base entries that may help with the user's message (cite them by number; if they do not cover the question, say so):\n\n${entries}`;
}

/**
 * The assistant's reply on `messageStream`, chunk by chunk as the provider streams it.
 *
 * Chunks are published OUTSIDE any transaction, on a fork of the request's
 * EntityManager: a fork never inherits a transaction (MikroORM copies the transaction
 * context only when asked to), so each NOTIFY runs on its own autocommitted statement
 * and leaves at once. Published inside the pipeline's transaction they would all arrive
 * together at its commit, after the whole reply: no streaming at all.
 *
 * One publish is in flight at a time, so chunks arrive in order; deltas that come while
 * it is in flight are sent together as the next chunk (a fast model's tokens cost one
 * NOTIFY per round trip to PostgreSQL, not one per token), each at most MAX_CHUNK_CHARS.
 * A chunk that cannot be published is logged and skipped: the stream is a preview, the
 * stored message is the record. The last chunk has done = true (and the error code when
 * the call failed).
 */
class ReplyStream {
  private pending = '';
  private index = 0;
  private inflight: Promise<void> | null = null;

  constructor(
    private readonly bus: EventBus,
    private readonly logger: Logger,
    private readonly target: Pick<MessageChunkEvent, 'userId' | 'conversationId' | 'messageId'>,
  ) {}

  push(text: string): void {
    if (!text) return;
    this.pending += text;
    this.pump();
  }

  /** Resolves when every delta pushed so far has been published. */
  async drain(): Promise<void> {
    while (this.inflight || this.pending) {
      if (!this.inflight) this.pump();
      await this.inflight;
    }
  }

  /** Drains, then publishes the last chunk. */
  async end(error: string | null): Promise<void> {
    await this.drain();
    await this.publish('', true, error);
  }

  private pump(): void {
    if (this.inflight || !this.pending) return;
    let cut = Math.min(this.pending.length, MAX_CHUNK_CHARS);
    // Never split a surrogate pair (an emoji) across two chunks.
    if (cut < this.pending.length && /[\uD800-\uDBFF]/.test(this.pending[cut - 1]!)) cut--;
    const delta = this.pending.slice(0, cut);
    this.pending = this.pending.slice(cut);
    this.inflight = this.publish(delta, false, null).finally(() => {
      this.inflight = null;
      this.pump();
    });
  }

  private async publish(delta: string, done: boolean, error: string | null): Promise<void> {
    const chunk: MessageChunkEvent = { ...this.target, delta, index: this.index++, done, error };
    try {
      await this.bus.publishNow(MESSAGE_CHUNK, chunk);
    } catch (err) {
      this.logger.warn(
        { err, module: 'ai', conversationId: this.target.conversationId, index: chunk.index },
        'a reply chunk could not be published',
      );
    }
  }
}
