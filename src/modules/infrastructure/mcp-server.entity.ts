import { Check, Entity, Enum, Index, ManyToOne, Property, type Opt, type Ref } from '@mikro-orm/core';
import { Field, ObjectType, registerEnumType } from 'type-graphql';
import { TimestampedEntity } from '../../shared/base.entity.js';
import type { SealedSecret } from '../../shared/crypto.js';
import { User } from '../identity/user.entity.js';

/** The statuses: INACTIVE until the first heartbeat (or when disabled), ACTIVE while heartbeats come, ERROR when they stop or the server reports a failure. */
export enum McpServerStatus {
  ACTIVE = 'ACTIVE',
  INACTIVE = 'INACTIVE',
  ERROR = 'ERROR',
}
registerEnumType(McpServerStatus, { name: 'McpServerStatus' });

/** One environment variable as stored: a plain value, or a secret sealed with the Envelope. */
export type StoredEnvVar =
  | { name: string; secret: false; value: string }
  | { name: string; secret: true; sealed: SealedSecret; last4: string | null };

/**
 * A registered MCP server: how to start it (command, args, environment) and
 * what it offers. The process runs outside Steward and reports heartbeats with a service
 * token; a job marks an ACTIVE server whose heartbeats stopped as ERROR. Secret
 * environment values are envelope-encrypted (AES-256-GCM, bound to the server and the
 * variable's name) and never returned in clear: only their last four characters.
 */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'mcp_servers' })
@Index({ properties: ['status', 'lastHeartbeatAt'] })
@Check({ name: 'mcp_servers_launch_check', expression: `"command" IS NOT NULL OR "url" IS NOT NULL` })
export class McpServer extends TimestampedEntity {
  @Field({ description: 'Unique' })
  @Property({ type: 'text', unique: true })
  name!: string;

  @Field({ description: 'e.g. filesystem, email, browser, calendar' })
  @Property({ type: 'text' })
  serverType!: string;

  @Field(() => String, {
    nullable: true,
    description: 'How to start a local (stdio) server; null for a remote one (url)',
  })
  @Property({ type: 'text', nullable: true })
  command?: string | null;

  @Field(() => String, {
    nullable: true,
    description: "A remote server's Streamable HTTP endpoint: Steward connects to it, lists its tools and pings it",
  })
  @Property({ type: 'text', nullable: true })
  url?: string | null;

  /** Request headers sent to a remote server (secrets sealed); resolved by McpServerResolver.headers, masked. */
  @Property({ type: 'jsonb', default: '[]' })
  headers: Opt<StoredEnvVar[]> = [];

  @Field(() => [String])
  @Property({ type: 'text[]', default: '{}' })
  args: Opt<string[]> = [];

  /** Resolved by McpServerResolver.environment (secrets masked); never a field as stored. */
  @Property({ type: 'jsonb', default: '[]' })
  environment: Opt<StoredEnvVar[]> = [];

  @Field(() => [String])
  @Property({ type: 'text[]', default: '{}' })
  capabilities: Opt<string[]> = [];

  @Field(() => Boolean, { description: 'Disabled servers are INACTIVE and never marked ERROR' })
  @Property({ type: 'boolean', default: true })
  isActive: Opt<boolean> = true;

  @Field(() => McpServerStatus)
  @Enum({ items: () => McpServerStatus, nativeEnumName: 'mcp_server_status', default: McpServerStatus.INACTIVE })
  status: Opt<McpServerStatus> = McpServerStatus.INACTIVE;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  lastHeartbeatAt?: Date | null;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  lastError?: string | null;

  @Field(() => Date)
  @Property({ type: 'timestamptz', defaultRaw: 'now()' })
  statusChangedAt: Opt<Date> = new Date();

  @ManyToOne(() => User, { ref: true, nullable: true, deleteRule: 'set null' })
  createdBy?: Ref<User> | null;
}
