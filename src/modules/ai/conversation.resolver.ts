import type { GraphQLResolveInfo } from 'graphql';
import sql from 'sql-template-tag';
import { Arg, Args, Ctx, FieldResolver, ID, Info, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import { onTopic } from '../../server/subscribe.js';
import { viewerOf, type Context } from '../../server/context.js';
import { Viewer } from '../../server/viewer.js';
import { Allow } from '../../shared/allow.js';
import { BY_ID, ConnectionType, PageArgs } from '../../shared/connection.js';
import { isUuid } from '../../shared/errors.js';
import { idOf, readModel, type RowOf } from '../../shared/read-model.js';
import { selectedFields } from '../../shared/selection.js';
import { Provider } from '../billing/provider.entity.js';
import { User } from '../identity/user.entity.js';
import { Project } from '../projects/project.entity.js';
import { Task } from '../work/task.entity.js';
import { Agent } from './agent.entity.js';
import { Conversation } from './conversation.entity.js';
import { MESSAGE_ADDED, MESSAGE_CHUNK, type MessageAddedEvent, type MessageChunkEvent } from './conversation.events.js';
import { ConversationWhere, MessageChunk, SendMessageInput, StartConversationInput } from './conversation.inputs.js';
import { KnowledgeEntry } from './knowledge-entry.entity.js';
import { Message } from './message.entity.js';

const ConversationConnection = ConnectionType(Conversation);
const MessageConnection = ConnectionType(Message);
const conversations = () => readModel(Conversation);

/** The columns a Message selection needs: knowledgeEntries reads knowledgeEntryIds from the row (no extra statement). */
function messageFields(fields: ReadonlySet<string>): ReadonlySet<string> {
  return fields.has('knowledgeEntries') ? new Set([...fields, 'knowledgeEntryIds']) : fields;
}

@Resolver(() => Conversation)
@Allow('SIGNED_IN')
export class ConversationResolver {
  @Query(() => Conversation, {
    nullable: true,
    description: "One of your conversations (admins: anyone's); null otherwise.",
  })
  conversation(
    @Arg('id', () => ID) id: string,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    if (!isUuid(id)) return null;
    return ctx.loaders
      .byId(conversations(), selectedFields(info), ctx.services.conversations.visible(viewer))
      .load(id.toLowerCase());
  }

  @Query(() => ConversationConnection, {
    description:
      "Your conversations, most recently active first. Admins: a user's (where.userId) or everyone's (where.allUsers).",
  })
  conversations(
    @Args() page: PageArgs,
    @Arg('where', () => ConversationWhere, { nullable: true }) where: ConversationWhere | null,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.services.conversations.list(viewer, selectedFields(info, ['edges', 'node']), where ?? {}, page);
  }

  @FieldResolver(() => User, { description: 'Whose conversation it is.' })
  user(@Root() c: RowOf<Conversation>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders.byId(readModel(User), selectedFields(info)).load(idOf(c.user)!);
  }

  @FieldResolver(() => Agent)
  agent(@Root() c: RowOf<Conversation>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders.byId(readModel(Agent), selectedFields(info)).load(idOf(c.agent)!);
  }

  @FieldResolver(() => Project, {
    nullable: true,
    description: 'Null when there is none, or you may no longer see it.',
  })
  project(@Root() c: RowOf<Conversation>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders.relation(
      c.project,
      readModel(Project),
      selectedFields(info),
      ctx.services.projects.policy.visible(viewerOf(ctx), 't.id'),
    );
  }

  @FieldResolver(() => Task, { nullable: true, description: 'Null when there is none, or you may no longer see it.' })
  task(@Root() c: RowOf<Conversation>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders.relation(
      c.task,
      readModel(Task),
      selectedFields(info),
      ctx.services.taskPolicy.visible(viewerOf(ctx), 't'),
    );
  }

  @FieldResolver(() => Provider, { nullable: true, description: 'The provider asked for; null: the platform chooses.' })
  provider(@Root() c: RowOf<Conversation>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders.relation(c.provider, readModel(Provider), selectedFields(info));
  }

  @FieldResolver(() => MessageConnection, { description: 'The history, oldest first.' })
  messages(
    @Root() c: RowOf<Conversation>,
    @Args() page: PageArgs,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.loaders
      .pagePerParent(readModel(Message), 'conversation', messageFields(selectedFields(info, ['edges', 'node'])), page, {
        sort: BY_ID,
      })
      .load(c.id);
  }

  @Mutation(() => Conversation, {
    description:
      'With an agent (none: the ASSISTANT), optionally about a project or task you may work on (CONTRIBUTOR+), through a chosen active provider.',
  })
  startConversation(@Arg('input') input: StartConversationInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.conversations.start(ctx, viewer, input);
  }

  @Mutation(() => Message, {
    description:
      "Your message to the conversation's agent, through the metered pipeline; returns the assistant's reply. Both messages are stored only when the call succeeds.",
  })
  sendMessage(@Arg('input') input: SendMessageInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.conversations.send(ctx, viewer, input);
  }

  @Mutation(() => Conversation, {
    description: 'The owner or an admin. An archived conversation keeps its history and takes no new messages.',
  })
  archiveConversation(@Arg('id', () => ID) id: string, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.conversations.archive(ctx, viewer, id);
  }

  @Subscription(() => Message, {
    description:
      "Messages stored in one of your conversations (yours and the assistant's). Only ever the owner's, admins included.",
    subscribe: onTopic<MessageAddedEvent, { conversationId: string }>(
      MESSAGE_ADDED,
      ({ args }) => {
        const id = String(args.conversationId).toLowerCase();
        return (e, v) => e.conversationId === id && e.userId === v.userId;
      },
      ({ ctx, args }) => ctx.services.conversations.requireOwn(viewerOf(ctx), args.conversationId),
    ),
  })
  messageAdded(
    @Root() e: MessageAddedEvent,
    @Arg('conversationId', () => ID) _conversationId: string,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.loaders
      .byId(readModel(Message), messageFields(selectedFields(info)), sql`t.conversation_id = ${e.conversationId}::uuid`)
      .load(e.messageId);
  }

  @Subscription(() => MessageChunk, {
    description:
      "The assistant's replies in one of your conversations, chunk by chunk as the provider streams them. Only ever the owner's, admins included.",
    subscribe: onTopic<MessageChunkEvent, { conversationId: string }>(
      MESSAGE_CHUNK,
      ({ args }) => {
        const id = String(args.conversationId).toLowerCase();
        return (e, v) => e.conversationId === id && e.userId === v.userId;
      },
      ({ ctx, args }) => ctx.services.conversations.requireOwn(viewerOf(ctx), args.conversationId),
    ),
  })
  messageStream(@Root() e: MessageChunkEvent, @Arg('conversationId', () => ID) _conversationId: string): MessageChunk {
    return {
      conversationId: e.conversationId,
      messageId: e.messageId,
      delta: e.delta,
      index: e.index,
      done: e.done,
      error: e.error ?? null,
    };
  }
}

/** Message's relations. Messages are reached only through a conversation the viewer may read (or its live events). */
@Resolver(() => Message)
@Allow('SIGNED_IN')
export class MessageResolver {
  @FieldResolver(() => Conversation)
  conversation(@Root() m: RowOf<Message>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders
      .byId(conversations(), selectedFields(info))
      .load(idOf(m.conversation as unknown as string | { id: string })!);
  }

  @FieldResolver(() => Provider, { nullable: true })
  provider(@Root() m: RowOf<Message>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders.relation(
      m.provider as unknown as string | { id: string } | null,
      readModel(Provider),
      selectedFields(info),
    );
  }

  @FieldResolver(() => [ID], {
    description: 'The knowledge entries given to the model as context for this reply (ASSISTANT conversations).',
  })
  knowledgeEntryIds(@Root() m: RowOf<Message>, @Ctx() ctx: Context): Promise<string[]> | string[] {
    if (Array.isArray(m.knowledgeEntryIds)) return m.knowledgeEntryIds;
    return ctx.loaders
      .byId<{ id: string; knowledgeEntryIds: string[] }>(readModel(Message), ['knowledgeEntryIds'])
      .load(m.id)
      .then((r) => r?.knowledgeEntryIds ?? []);
  }

  @FieldResolver(() => [KnowledgeEntry], {
    description: 'Those entries, as far as you may read them (deactivated ones: admins only).',
  })
  async knowledgeEntries(@Root() m: RowOf<Message>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    const ids = await this.knowledgeEntryIds(m, ctx);
    if (!ids.length) return [];
    const rows = await ctx.loaders
      .byId(readModel(KnowledgeEntry), selectedFields(info), ctx.services.knowledge.visible(viewerOf(ctx)))
      .loadMany(ids);
    return rows.filter((r) => r && !(r instanceof Error));
  }
}
