import { Entity, ManyToOne, Property, Unique, type Ref } from '@mikro-orm/core';
import { GraphQLJSONObject } from 'graphql-scalars';
import { Field, ObjectType } from 'type-graphql';
import { TimestampedEntity } from '../../shared/base.entity.js';
import { McpServer } from '../infrastructure/mcp-server.entity.js';

/**
 * A tool a remote MCP server listed when Steward last reached it (`tools/list`), with its
 * schemas as the server gave them. Replaced on every successful probe; the server's
 * `capabilities` are these tools' names.
 */
@ObjectType('McpTool', { simpleResolvers: true })
@Entity({ tableName: 'mcp_server_tools' })
@Unique({ properties: ['server', 'name'] })
export class McpServerTool extends TimestampedEntity {
  @ManyToOne(() => McpServer, { ref: true, deleteRule: 'cascade' })
  server!: Ref<McpServer>;

  @Field()
  @Property({ type: 'text' })
  name!: string;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  title?: string | null;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  description?: string | null;

  @Field(() => GraphQLJSONObject, { description: 'JSON Schema of the arguments' })
  @Property({ type: 'jsonb' })
  inputSchema!: Record<string, unknown>;

  @Field(() => GraphQLJSONObject, {
    nullable: true,
    description: 'JSON Schema of structuredContent, when the server declares one',
  })
  @Property({ type: 'jsonb', nullable: true })
  outputSchema?: Record<string, unknown> | null;

  @Field(() => GraphQLJSONObject, {
    nullable: true,
    description: "The server's hints (readOnlyHint, destructiveHint, …): hints, never trusted for access",
  })
  @Property({ type: 'jsonb', nullable: true })
  annotations?: Record<string, unknown> | null;
}
