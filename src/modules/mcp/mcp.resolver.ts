import type { GraphQLResolveInfo } from 'graphql';
import { Arg, Ctx, FieldResolver, ID, Info, Mutation, Resolver, Root } from 'type-graphql';
import type { Context } from '../../server/context.js';
import { Allow } from '../../shared/allow.js';
import { readModel, type RowOf } from '../../shared/read-model.js';
import { selectedFields } from '../../shared/selection.js';
import { McpServer } from '../infrastructure/mcp-server.entity.js';
import { McpServerTool } from './mcp-server-tool.entity.js';

@Resolver(() => McpServer)
@Allow('ADMIN')
export class McpServerToolsResolver {
  @FieldResolver(() => [McpServerTool], { description: 'The tools a remote server listed when Steward last reached it, by name' })
  tools(@Root() s: RowOf<McpServer>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders.byForeignKey(readModel(McpServerTool), 'server', selectedFields(info), { sort: { property: 'name', direction: 'ASC', type: 'text' } }).load(s.id);
  }

  @Mutation(() => McpServer, { description: 'Admins. Reaches a remote server now (as the heartbeat does): its tools and status as found.' })
  refreshMcpServer(@Arg('id', () => ID) id: string, @Ctx() ctx: Context) {
    return ctx.services.mcpRegistry.refresh(ctx, id);
  }
}
