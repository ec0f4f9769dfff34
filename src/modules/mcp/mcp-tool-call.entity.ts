import { Entity, Enum, Index, ManyToOne, Property, type Opt, type Ref } from '@mikro-orm/core';
import { Field, Int, ObjectType, registerEnumType } from 'type-graphql';
import { TimestampedEntity } from '../../shared/base.entity.js';
import { User } from '../identity/user.entity.js';
import { McpServer } from '../infrastructure/mcp-server.entity.js';
import { Project } from '../projects/project.entity.js';
import { Approval } from '../work/approval.entity.js';

export enum McpToolCallStatus {
  /** The allow list (or the caller's role) refused it; nothing was sent. */
  REFUSED = 'REFUSED',
  AWAITING_APPROVAL = 'AWAITING_APPROVAL',
  /** Approved, to run on the caller's next call with the same arguments. */
  APPROVED = 'APPROVED',
  REJECTED = 'REJECTED',
  EXPIRED = 'EXPIRED',
  RUNNING = 'RUNNING',
  SUCCEEDED = 'SUCCEEDED',
  /** The server answered with an error, or could not be reached. */
  FAILED = 'FAILED',
}
registerEnumType(McpToolCallStatus, { name: 'McpToolCallStatus' });

/**
 * One tool call through Steward, whatever became of it. The arguments are kept only as
 * long as the call may still run (a gated call waiting for its approval); their digest
 * (sha256 of their canonical JSON) always.
 */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'mcp_tool_calls' })
@Index({ properties: ['project', 'id'] })
@Index({ properties: ['approval'] })
@Index({
  name: 'mcp_tool_calls_open_index',
  expression: `create index "mcp_tool_calls_open_index" on "mcp_tool_calls" ("caller_id", "arguments_digest") where not "consumed"`,
})
export class McpToolCall extends TimestampedEntity {
  @ManyToOne(() => Project, { ref: true, nullable: true, deleteRule: 'set null' })
  project?: Ref<Project> | null;

  @ManyToOne(() => McpServer, { ref: true, nullable: true, deleteRule: 'set null' })
  server?: Ref<McpServer> | null;

  @Field({ description: "The server's name at the time of the call" })
  @Property({ type: 'text' })
  serverName!: string;

  @Field()
  @Property({ type: 'text' })
  tool!: string;

  @ManyToOne(() => User, { ref: true, nullable: true, deleteRule: 'set null' })
  caller?: Ref<User> | null;

  @Field(() => String, { nullable: true, description: 'The service actor that called, when a service token did' })
  @Property({ type: 'text', nullable: true })
  callerActor?: string | null;

  @Property({ type: 'jsonb', nullable: true })
  arguments?: Record<string, unknown> | null;

  @Field({ description: "sha256 of the arguments' canonical JSON (RFC 8785)" })
  @Property({ type: 'text' })
  argumentsDigest!: string;

  @Field(() => McpToolCallStatus)
  @Enum({ items: () => McpToolCallStatus, nativeEnumName: 'mcp_tool_call_status' })
  status!: McpToolCallStatus;

  /** Its outcome has been handed to the caller: a later call with the same arguments is a new call. */
  @Property({ type: 'boolean', default: false })
  consumed: Opt<boolean> = false;

  @ManyToOne(() => Approval, { ref: true, nullable: true, deleteRule: 'set null' })
  approval?: Ref<Approval> | null;

  @Field(() => Boolean, { nullable: true })
  @Property({ type: 'boolean', nullable: true })
  isError?: boolean | null;

  @Property({ type: 'jsonb', nullable: true })
  result?: Record<string, unknown> | null;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  error?: string | null;

  @Field(() => Int, { nullable: true })
  @Property({ type: 'int', nullable: true })
  durationMs?: number | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  finishedAt?: Date | null;
}
