import type { GraphQLResolveInfo } from 'graphql';
import { Arg, Args, Ctx, FieldResolver, ID, Info, Mutation, Query, Resolver, Root } from 'type-graphql';
import type { Context } from '../../server/context.js';
import { Viewer } from '../../server/viewer.js';
import { Allow } from '../../shared/allow.js';
import { ConnectionType, PageArgs } from '../../shared/connection.js';
import { isUuid } from '../../shared/errors.js';
import { idOf, readModel, type RowOf } from '../../shared/read-model.js';
import { selectedFields } from '../../shared/selection.js';
import {
  CreateWatcherInput,
  ReportWatcherRunInput,
  UpdateWatcherInput,
  WatcherWhere,
} from './infrastructure.inputs.js';
import { Watcher, WatcherRun } from './watcher.entity.js';

const WatcherConnection = ConnectionType(Watcher);
const WatcherRunConnection = ConnectionType(WatcherRun);

@Resolver(() => Watcher)
@Allow('ADMIN')
export class WatcherResolver {
  @Allow('ADMIN', 'SERVICE')
  @Query(() => Watcher, { nullable: true, description: 'Admins and services (the watcher processes).' })
  watcher(@Arg('id', () => ID) id: string, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return isUuid(id) ? ctx.loaders.byId(readModel(Watcher), selectedFields(info)).load(id.toLowerCase()) : null;
  }

  @Allow('ADMIN', 'SERVICE')
  @Query(() => WatcherConnection, { description: 'Admins and services; failing: those whose last run failed.' })
  watchers(
    @Args() page: PageArgs,
    @Arg('where', () => WatcherWhere, { nullable: true }) where: WatcherWhere | null,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.services.watchers.list(selectedFields(info, ['edges', 'node']), where ?? {}, page);
  }

  @FieldResolver(() => WatcherRunConnection, { description: 'Reported runs, newest first.' })
  runs(@Root() w: RowOf<Watcher>, @Args() page: PageArgs, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders
      .pagePerParent(readModel(WatcherRun), 'watcher', selectedFields(info, ['edges', 'node']), page, {
        sort: { property: 'createdAt', direction: 'DESC', type: 'timestamptz' },
      })
      .load(w.id);
  }

  @Mutation(() => Watcher, { description: 'Admins.' })
  createWatcher(@Arg('input') input: CreateWatcherInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.watchers.create(ctx, viewer, input);
  }

  @Mutation(() => Watcher, { description: 'Admins.' })
  updateWatcher(@Arg('input') input: UpdateWatcherInput, @Ctx() ctx: Context) {
    return ctx.services.watchers.update(ctx, input);
  }

  @Mutation(() => Boolean, { description: 'Admins. Its runs go with it (the audit trail keeps what happened).' })
  deleteWatcher(@Arg('id', () => ID) id: string, @Ctx() ctx: Context) {
    return ctx.services.watchers.remove(ctx, id);
  }

  @Allow('SERVICE')
  @Mutation(() => WatcherRun, {
    description: 'A watcher process (service token) reports a run: last run, last error and error counts follow.',
  })
  reportWatcherRun(@Arg('input') input: ReportWatcherRunInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.watchers.reportRun(ctx, viewer, input);
  }
}

@Resolver(() => WatcherRun)
@Allow('ADMIN')
export class WatcherRunResolver {
  @FieldResolver(() => Watcher)
  watcher(@Root() r: RowOf<WatcherRun>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders.byId(readModel(Watcher), selectedFields(info)).load(idOf(r.watcher)!);
  }
}
