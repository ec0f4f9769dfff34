import type { GraphQLResolveInfo } from 'graphql';
import {
  Arg,
  Args,
  Ctx,
  FieldResolver,
  ID,
  Info,
  Mutation,
  ObjectType,
  Field,
  Query,
  Resolver,
  Root,
  Subscription,
} from 'type-graphql';
import type { Context } from '../../server/context.js';
import { Viewer } from '../../server/viewer.js';
import { Allow } from '../../shared/allow.js';
import { ConnectionType, PageArgs } from '../../shared/connection.js';
import { isUuid } from '../../shared/errors.js';
import { readModel, type RowOf } from '../../shared/read-model.js';
import { selectedFields } from '../../shared/selection.js';
import { MCP_SERVER_STATUS_CHANGED, type McpServerEvent } from './infrastructure.events.js';
import {
  McpServerHeartbeatInput,
  McpServerWhere,
  RegisterMcpServerInput,
  UpdateMcpServerInput,
} from './infrastructure.inputs.js';
import { McpServer } from './mcp-server.entity.js';
import { showEnvironment } from './mcp-server.service.js';
import { onTopic } from '../../server/subscribe.js';

@ObjectType({ description: "An environment variable of an MCP server; a secret's value is never shown." })
export class McpEnvVar {
  @Field() name!: string;
  @Field() secret!: boolean;
  @Field(() => String, { nullable: true, description: 'Null for a secret' }) value!: string | null;
  @Field(() => String, { nullable: true, description: "A secret's last four characters (when it has at least eight)" })
  last4!: string | null;
}

const McpServerConnection = ConnectionType(McpServer);
const servers = () => readModel(McpServer);

@Resolver(() => McpServer)
@Allow('ADMIN')
export class McpServerResolver {
  @Allow('ADMIN', 'SERVICE')
  @Query(() => McpServer, { nullable: true, description: 'Admins and services (the process supervisor).' })
  mcpServer(@Arg('id', () => ID) id: string, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return isUuid(id) ? ctx.loaders.byId(servers(), selectedFields(info)).load(id.toLowerCase()) : null;
  }

  @Allow('ADMIN', 'SERVICE')
  @Query(() => McpServerConnection, { description: 'The MCP server registry. Admins and services.' })
  mcpServers(
    @Args() page: PageArgs,
    @Arg('where', () => McpServerWhere, { nullable: true }) where: McpServerWhere | null,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.services.mcpServers.list(selectedFields(info, ['edges', 'node']), where ?? {}, page);
  }

  @FieldResolver(() => [McpEnvVar], { description: 'Secret values masked' })
  environment(@Root() s: RowOf<McpServer>): McpEnvVar[] {
    return showEnvironment(s.environment);
  }

  @FieldResolver(() => [McpEnvVar], { description: 'Request headers sent to a remote server; secret values masked' })
  headers(@Root() s: RowOf<McpServer>): McpEnvVar[] {
    return showEnvironment(s.headers);
  }

  @Mutation(() => McpServer, {
    description:
      'Admins. A remote server by url (Streamable HTTP) or a local one by command. Secret environment values and headers are encrypted and never shown again.',
  })
  registerMcpServer(@Arg('input') input: RegisterMcpServerInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.mcpServers.register(ctx, viewer, input);
  }

  @Mutation(() => McpServer, { description: 'Admins. Disabling makes it INACTIVE.' })
  updateMcpServer(@Arg('input') input: UpdateMcpServerInput, @Ctx() ctx: Context) {
    return ctx.services.mcpServers.update(ctx, input);
  }

  @Mutation(() => Boolean, { description: 'Admins.' })
  deleteMcpServer(@Arg('id', () => ID) id: string, @Ctx() ctx: Context) {
    return ctx.services.mcpServers.remove(ctx, id);
  }

  @Allow('SERVICE')
  @Mutation(() => McpServer, {
    description: "The server's process (service token) says it is alive, or (ok: false) that it failed.",
  })
  mcpServerHeartbeat(@Arg('input') input: McpServerHeartbeatInput, @Ctx() ctx: Context) {
    return ctx.services.mcpServers.heartbeat(ctx, input);
  }

  @Allow('ADMIN', 'SERVICE')
  @Subscription(() => McpServer, {
    description:
      'Status changes of MCP servers (heartbeat after silence, failure, heartbeat timeout, disabled). Admins and services.',
    subscribe: onTopic<McpServerEvent>(MCP_SERVER_STATUS_CHANGED, ({ args }) => {
      const id = (args.id as string | null | undefined)?.toLowerCase();
      return (e) => !id || e.mcpServerId === id;
    }),
  })
  mcpServerStatusChanged(
    @Root() e: McpServerEvent,
    @Arg('id', () => ID, { nullable: true }) _id: string | null,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.loaders.byId(servers(), selectedFields(info)).load(e.mcpServerId);
  }
}
