import { Entity, ManyToOne, Property, Unique, type Opt, type Ref } from '@mikro-orm/core';
import { Field, ObjectType } from 'type-graphql';
import { TimestampedEntity } from '../../shared/base.entity.js';
import { User } from '../identity/user.entity.js';
import { McpServer } from '../infrastructure/mcp-server.entity.js';
import { Project } from '../projects/project.entity.js';

/**
 * An entry of a project's allow list: its contributors (and agents acting for it) may call
 * this server's tool through Steward, or every tool of the server when `tool` is null. The
 * entry naming the tool wins over the server-wide one, so one tool can be gated on an
 * approval while the rest of the server is not.
 */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'mcp_tool_grants' })
@Unique({
  name: 'mcp_tool_grants_unique',
  expression: `create unique index "mcp_tool_grants_unique" on "mcp_tool_grants" ("project_id", "server_id", coalesce("tool", ''))`,
})
export class McpToolGrant extends TimestampedEntity {
  @ManyToOne(() => Project, { ref: true, deleteRule: 'cascade' })
  project!: Ref<Project>;

  @ManyToOne(() => McpServer, { ref: true, deleteRule: 'cascade' })
  server!: Ref<McpServer>;

  @Field(() => String, { nullable: true, description: 'Null: every tool of the server' })
  @Property({ type: 'text', nullable: true })
  tool?: string | null;

  @Field(() => Boolean, { description: "Each call waits for a human's approval and runs once approved" })
  @Property({ type: 'boolean', default: false })
  needsApproval: Opt<boolean> = false;

  @ManyToOne(() => User, { ref: true, nullable: true, deleteRule: 'set null' })
  createdBy?: Ref<User> | null;
}
