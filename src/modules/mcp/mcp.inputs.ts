import { IsUUID, Length } from 'class-validator';
import { GraphQLJSON, GraphQLJSONObject } from 'graphql-scalars';
import { Field, ID, InputType, ObjectType } from 'type-graphql';
import { Approval } from '../work/approval.entity.js';
import { McpToolCall, McpToolCallStatus } from './mcp-tool-call.entity.js';

@InputType()
export class CallMcpToolInput {
  @Field(() => ID) @IsUUID() serverId!: string;
  @Field() @Length(1, 200) tool!: string;
  @Field(() => GraphQLJSONObject, { nullable: true, description: "The tool's arguments (default {})" })
  arguments?: Record<string, unknown> | null;
  @Field(() => ID, {
    nullable: true,
    description: 'The project whose allow list applies; without one only admins may call',
  })
  @IsUUID()
  projectId?: string | null;
}

@ObjectType({
  description:
    'What a tool call through Steward came to. While a gated call waits, approval is set and content is null: call again with the same arguments once it is approved.',
})
export class McpToolResult {
  @Field(() => GraphQLJSON, { nullable: true, description: "The tool's MCP content blocks" }) content!: unknown;
  @Field(() => GraphQLJSON, { nullable: true }) structuredContent!: unknown;
  @Field(() => Boolean, { description: 'The tool failed, could not be reached, or its approval was refused' })
  isError!: boolean;
  @Field(() => Approval, {
    nullable: true,
    description: 'Set while a gated call waits (and when its approval was refused)',
  })
  approval!: Approval | null;
  @Field(() => McpToolCall) call!: McpToolCall;
}

@InputType({ description: "An entry of a project's allow list" })
export class AllowMcpToolInput {
  @Field(() => ID) @IsUUID() projectId!: string;
  @Field(() => ID) @IsUUID() serverId!: string;
  @Field(() => String, { nullable: true, description: 'Null: every tool of the server' }) @Length(1, 200) tool?:
    string | null;
  @Field(() => Boolean, { nullable: true, description: "Each call waits for a human's approval (default false)" })
  needsApproval?: boolean | null;
}

@InputType()
export class McpToolCallWhere {
  @Field(() => ID, { nullable: true }) @IsUUID() projectId?: string | null;
  @Field(() => ID, { nullable: true }) @IsUUID() serverId?: string | null;
  @Field(() => [McpToolCallStatus], { nullable: true }) status?: McpToolCallStatus[] | null;
}
