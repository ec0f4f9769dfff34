import { GraphQLJSONObject } from 'graphql-scalars';
import { Field, ID, Int, ObjectType } from 'type-graphql';

import type { Scope, Viewer } from '../../shared/scope.js';
import type { ToolCall } from '../billing/index.js';

/** What became of one tool call of an agent's model. */
export type AgentToolStatus =
  /** The tool ran and answered. */
  | 'SUCCEEDED'
  /** The tool ran and answered with an error, or its server could not be reached. */
  | 'FAILED'
  /** Not run: the project's allow list (or the caller's role, or the token's scopes) does not let it through. */
  | 'REFUSED'
  /** Not run: the model named no tool it was offered, or gave arguments that are not a JSON object. */
  | 'INVALID'
  /** Not run yet: its allow-list entry needs a human's approval, which was requested. */
  | 'AWAITING_APPROVAL'
  /** Not run: its approval was rejected or expired. */
  | 'REJECTED'
  /** Not run: the turn ended before it (another call of the round waits for approval, or the rounds ran out). */
  | 'NOT_RUN';

/** One tool call an agent's model made while answering, as kept on the reply (Message.toolCalls). */
@ObjectType({ description: "A tool call an agent's model made while answering, and what came of it" })
export class MessageToolCall {
  @Field(() => String, { description: "The model's id of the call" })
  id!: string;

  @Field(() => Int, { description: 'The round of tool calls it was made in (1 first)' })
  round!: number;

  @Field(() => String, { description: 'The name the model called: <server name>__<tool>' })
  name!: string;

  @Field(() => String, { nullable: true, description: "The registered MCP server's name; null for an unknown tool" })
  server!: string | null;

  @Field(() => String, { nullable: true })
  tool!: string | null;

  @Field(() => GraphQLJSONObject, { nullable: true, description: 'The arguments as the model gave them (parsed)' })
  arguments!: Record<string, unknown> | null;

  @Field(() => String, {
    description: 'SUCCEEDED, FAILED, REFUSED, INVALID, AWAITING_APPROVAL, REJECTED or NOT_RUN',
  })
  status!: AgentToolStatus;

  @Field(() => String, { description: 'What the model was given back (the tool result or why it did not run)' })
  result!: string;

  @Field(() => ID, { nullable: true, description: 'The mcpToolCalls record of the call' })
  mcpToolCallId!: string | null;

  @Field(() => ID, { nullable: true, description: 'The approval it waits for (or was refused by)' })
  approvalId!: string | null;
}

/** A tool in OpenAI's function-calling format, as a model is offered it. */
export interface FunctionTool {
  type: 'function';
  function: { name: string; description?: string; parameters: Record<string, unknown> };
}

export interface AgentToolOutcome {
  status: Exclude<AgentToolStatus, 'NOT_RUN'>;
  /** The text handed back to the model as the `tool` message. */
  result: string;
  server: string | null;
  tool: string | null;
  arguments: Record<string, unknown> | null;
  mcpToolCallId: string | null;
  approvalId: string | null;
}

/** The tools offered for one turn, and the way to run what the model calls. */
export interface AgentToolSet {
  tools: FunctionTool[];
  run(call: ToolCall): Promise<AgentToolOutcome>;
}

/**
 * The MCP tools an agent may call in a conversation (implemented by the mcp module): the
 * ones the conversation's project allows its owner, each call through the same gate as
 * `callMcpTool`. null: no tools for this turn.
 */
export interface AgentToolbox {
  offer(scope: Scope, viewer: Viewer, projectId: string | null): Promise<AgentToolSet | null>;
}
