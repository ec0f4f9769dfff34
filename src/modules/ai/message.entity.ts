import { Entity, Enum, Index, ManyToOne, Property, type Opt, type Ref } from '@mikro-orm/core';
import { Field, Int, ObjectType, registerEnumType } from 'type-graphql';
import { BaseEntity } from '../../shared/base.entity.js';
import { Provider } from '../billing/provider.entity.js';
import { MessageToolCall } from './agent-tools.js';
import { Conversation } from './conversation.entity.js';

export enum MessageRole {
  USER = 'USER',
  ASSISTANT = 'ASSISTANT',
  SYSTEM = 'SYSTEM',
}
registerEnumType(MessageRole, { name: 'MessageRole' });

/** One message of a conversation (an agent's message or a chat message). */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'messages' })
@Index({ properties: ['conversation', 'id'] })
export class Message extends BaseEntity {
  @ManyToOne(() => Conversation, { ref: true, deleteRule: 'cascade' })
  conversation!: Ref<Conversation>;

  /** The contract's `role: String!`: USER, ASSISTANT or SYSTEM. */
  @Field(() => String)
  @Enum({ items: () => MessageRole, nativeEnumName: 'message_role' })
  role!: MessageRole;

  @Field()
  @Property({ type: 'text' })
  content!: string;

  @Field(() => Int, { nullable: true })
  @Property({ type: 'integer', nullable: true })
  promptTokens?: number | null;

  @Field(() => Int, { nullable: true })
  @Property({ type: 'integer', nullable: true })
  completionTokens?: number | null;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  model?: string | null;

  @ManyToOne(() => Provider, { ref: true, nullable: true, deleteRule: 'set null' })
  provider?: Ref<Provider> | null;

  @Field(() => Int, { nullable: true })
  @Property({ type: 'integer', nullable: true })
  latencyMs?: number | null;

  /** Knowledge entries added to the call's context (retrieval). */
  @Property({ type: 'uuid[]', default: '{}' })
  knowledgeEntryIds: Opt<string[]> = [];

  /** The MCP tool calls the agent's model made on the way to this reply, in order. */
  @Field(() => [MessageToolCall], {
    nullable: true,
    description: "The MCP tool calls the agent's model made on the way to this reply, in order; null when it made none",
  })
  @Property({ type: 'jsonb', nullable: true })
  toolCalls?: MessageToolCall[] | null;
}
