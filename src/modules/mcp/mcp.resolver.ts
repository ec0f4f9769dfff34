import type { GraphQLResolveInfo } from 'graphql';
import { Arg, Args, Ctx, FieldResolver, ID, Info, Mutation, Query, Resolver, Root } from 'type-graphql';
import type { Context } from '../../server/context.js';
import { Viewer } from '../../server/viewer.js';
import { Allow } from '../../shared/allow.js';
import { ConnectionType, PageArgs } from '../../shared/connection.js';
import { idOf, readModel, type RowOf } from '../../shared/read-model.js';
import { selectedFields } from '../../shared/selection.js';
import { User } from '../identity/user.entity.js';
import { McpServer } from '../infrastructure/mcp-server.entity.js';
import { Project } from '../projects/project.entity.js';
import { Approval } from '../work/approval.entity.js';
import { McpServerTool } from './mcp-server-tool.entity.js';
import { McpToolCall } from './mcp-tool-call.entity.js';
import { McpToolGrant } from './mcp-tool-grant.entity.js';
import { AllowMcpToolInput, CallMcpToolInput, McpToolCallWhere, McpToolResult } from './mcp.inputs.js';

const McpToolCallConnection = ConnectionType(McpToolCall);

@Resolver(() => McpServer)
@Allow('ADMIN')
export class McpServerToolsResolver {
  @FieldResolver(() => [McpServerTool], {
    description: 'The tools a remote server listed when Steward last reached it, by name',
  })
  tools(@Root() s: RowOf<McpServer>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders
      .byForeignKey(readModel(McpServerTool), 'server', selectedFields(info), {
        sort: { property: 'name', direction: 'ASC', type: 'text' },
      })
      .load(s.id);
  }

  @Mutation(() => McpServer, {
    description: 'Admins. Reaches a remote server now (as the heartbeat does): its tools and status as found.',
  })
  refreshMcpServer(@Arg('id', () => ID) id: string, @Ctx() ctx: Context) {
    return ctx.services.mcpRegistry.refresh(ctx, id);
  }
}

@Resolver(() => McpToolCall)
@Allow('SIGNED_IN')
export class McpToolCallResolver {
  @Allow('SIGNED_IN', 'SERVICE')
  @Mutation(() => McpToolResult, {
    description:
      "Calls a registered remote server's tool through Steward, as the project's allow list permits (CONTRIBUTOR+, or an agent's service token); a gated tool answers with its approval until approved, then runs once.",
  })
  callMcpTool(@Arg('input') input: CallMcpToolInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.mcpToolCalls.call(ctx, viewer, input);
  }

  @Query(() => McpToolCallConnection, {
    description:
      "Tool calls through Steward, newest first: admins see all, project owners and maintainers their projects'.",
  })
  mcpToolCalls(
    @Args() page: PageArgs,
    @Arg('where', () => McpToolCallWhere, { nullable: true }) where: McpToolCallWhere | null,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.services.mcpToolCalls.list(viewer, selectedFields(info, ['edges', 'node']), where ?? {}, page);
  }

  @Query(() => [McpToolGrant], { description: "A project's allow list of MCP servers and tools (its members)." })
  mcpToolGrants(@Arg('projectId', () => ID) projectId: string, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.mcpToolCalls.grants(viewer, projectId);
  }

  @Mutation(() => McpToolGrant, {
    description:
      "Admins and the project's owner and maintainers: lets the project call a server's tool (or all its tools), optionally each call gated on an approval.",
  })
  allowMcpTool(@Arg('input') input: AllowMcpToolInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.mcpToolCalls.allow(ctx, viewer, input);
  }

  @Mutation(() => Boolean, {
    description: "Admins and the project's owner and maintainers: removes an entry of its allow list.",
  })
  disallowMcpTool(@Arg('id', () => ID) id: string, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.mcpToolCalls.disallow(ctx, viewer, id);
  }

  @FieldResolver(() => User, {
    nullable: true,
    description: 'The calling user (for a service token: the user it belongs to)',
  })
  caller(@Root() c: RowOf<McpToolCall>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    const id = idOf(c.caller);
    return id ? ctx.loaders.byId(readModel(User), selectedFields(info)).load(id) : null;
  }

  @FieldResolver(() => Project, { nullable: true })
  project(@Root() c: RowOf<McpToolCall>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    const id = idOf(c.project);
    return id ? ctx.loaders.byId(readModel(Project), selectedFields(info)).load(id) : null;
  }

  @FieldResolver(() => McpServer, { nullable: true })
  server(@Root() c: RowOf<McpToolCall>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    const id = idOf(c.server);
    return id ? ctx.loaders.byId(readModel(McpServer), selectedFields(info)).load(id) : null;
  }

  @FieldResolver(() => Approval, { nullable: true })
  approval(@Root() c: RowOf<McpToolCall>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    const id = idOf(c.approval);
    return id ? ctx.loaders.byId(readModel(Approval), selectedFields(info)).load(id) : null;
  }
}

@Resolver(() => McpToolGrant)
export class McpToolGrantResolver {
  @FieldResolver(() => McpServer, { nullable: true })
  server(@Root() g: RowOf<McpToolGrant>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    const id = idOf(g.server);
    return id ? ctx.loaders.byId(readModel(McpServer), selectedFields(info)).load(id) : null;
  }
}
