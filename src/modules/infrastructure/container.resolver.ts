import type { GraphQLResolveInfo } from 'graphql';
import { Arg, Args, Ctx, FieldResolver, ID, Info, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import type { Context } from '../../server/context.js';
import { Viewer } from '../../server/viewer.js';
import { Allow } from '../../shared/allow.js';
import { ConnectionType, PageArgs } from '../../shared/connection.js';
import { isUuid } from '../../shared/errors.js';
import { idOf, readModel, type RowOf } from '../../shared/read-model.js';
import { selectedFields } from '../../shared/selection.js';
import { required, visibleProject } from '../../shared/visibility.js';
import { User } from '../identity/user.entity.js';
import { Project } from '../projects/project.entity.js';
import { Container, ContainerStatus } from './container.entity.js';
import { CONTAINER_STATUS_CHANGED, type ContainerEvent } from './infrastructure.events.js';
import {
  ContainerWhere,
  CreateContainerInput,
  ReportContainerStatusInput,
  UpdateContainerInput,
} from './infrastructure.inputs.js';
import { onTopic } from '../../server/subscribe.js';

const ContainerConnection = ConnectionType(Container);
const containers = () => readModel(Container);
const userById = (ctx: Context, info: GraphQLResolveInfo, id: string | null) =>
  ctx.loaders.relation(id, readModel(User), selectedFields(info));

@Resolver(() => Container)
@Allow('SIGNED_IN')
export class ContainerResolver {
  @Allow('SIGNED_IN', 'SERVICE')
  @Query(() => Container, { nullable: true, description: 'A container of a project you may see (null otherwise).' })
  container(
    @Arg('id', () => ID) id: string,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    if (!isUuid(id)) return null;
    return ctx.loaders
      .byId(containers(), selectedFields(info), ctx.services.containers.visible(viewer))
      .load(id.toLowerCase());
  }

  @Allow('SIGNED_IN', 'SERVICE')
  @Query(() => ContainerConnection, {
    description:
      'Containers of the projects you may see (runtimes: all); pendingAction: those with a desired status to act on.',
  })
  containers(
    @Args() page: PageArgs,
    @Arg('where', () => ContainerWhere, { nullable: true }) where: ContainerWhere | null,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.services.containers.list(viewer, selectedFields(info, ['edges', 'node']), where ?? {}, page);
  }

  @FieldResolver(() => Project)
  project(@Root() c: RowOf<Container>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return required(visibleProject(ctx, info, idOf(c.project)), 'Project', idOf(c.project));
  }

  @FieldResolver(() => User, { nullable: true })
  createdBy(@Root() c: RowOf<Container>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return userById(ctx, info, idOf(c.createdBy));
  }

  @FieldResolver(() => User, {
    nullable: true,
    description: 'Who asked for the desired status (null: the idle job or a service)',
  })
  desiredBy(@Root() c: RowOf<Container>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return userById(ctx, info, idOf(c.desiredBy));
  }

  @Allow('SIGNED_IN', 'SERVICE')
  @Mutation(() => Container, {
    description: 'CONTRIBUTOR+ of an ACTIVE project. Starts CREATING, with RUNNING as its desired status.',
  })
  createContainer(@Arg('input') input: CreateContainerInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.containers.create(ctx, viewer, input);
  }

  @Allow('SIGNED_IN', 'SERVICE')
  @Mutation(() => Container, { description: 'New CPU and memory limits. CONTRIBUTOR+.' })
  updateContainer(@Arg('input') input: UpdateContainerInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.containers.update(ctx, viewer, input);
  }

  @Allow('SIGNED_IN', 'SERVICE')
  @Mutation(() => Container, { description: 'Asks the runtime to run it (desired status RUNNING). CONTRIBUTOR+.' })
  startContainer(@Arg('id', () => ID) id: string, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.containers.request(ctx, viewer, id, ContainerStatus.RUNNING);
  }

  @Allow('SIGNED_IN', 'SERVICE')
  @Mutation(() => Container, { description: 'Asks the runtime to stop it (desired status STOPPED). CONTRIBUTOR+.' })
  stopContainer(@Arg('id', () => ID) id: string, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.containers.request(ctx, viewer, id, ContainerStatus.STOPPED);
  }

  @Allow('SIGNED_IN', 'SERVICE')
  @Mutation(() => Container, {
    description: 'Asks the runtime to put a RUNNING container to sleep (desired status SLEEPING). CONTRIBUTOR+.',
  })
  sleepContainer(@Arg('id', () => ID) id: string, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.containers.request(ctx, viewer, id, ContainerStatus.SLEEPING);
  }

  @Allow('SERVICE')
  @Mutation(() => Container, {
    description: 'The runtime (service token) reports the status it reached; invalid moves are BAD_USER_INPUT.',
  })
  reportContainerStatus(
    @Arg('input') input: ReportContainerStatusInput,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
  ) {
    return ctx.services.containers.report(ctx, viewer, input);
  }

  @Allow('SERVICE')
  @Mutation(() => Container, {
    description: 'The runtime (service token) reports activity: the container is not idle.',
  })
  async touchContainer(
    @Arg('id', () => ID) id: string,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    const touched = await ctx.services.containers.touch(viewer, id);
    return ctx.loaders.byId(containers(), selectedFields(info)).load(touched);
  }

  @Allow('SIGNED_IN', 'SERVICE')
  @Subscription(() => Container, {
    description:
      "Creations, status changes and start/stop/sleep requests of containers, to the project's members (and admins and runtimes).",
    subscribe: onTopic<ContainerEvent>(CONTAINER_STATUS_CHANGED, ({ ctx, args }) => {
      const projectId = (args.projectId as string | null | undefined)?.toLowerCase();
      return (e, viewer, scope) =>
        (!projectId || e.projectId === projectId) && ctx.services.containers.hears(viewer, e, scope);
    }),
  })
  containerStatusChanged(
    @Root() e: ContainerEvent,
    @Arg('projectId', () => ID, { nullable: true }) _p: string | null,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.loaders.byId(containers(), selectedFields(info)).load(e.containerId);
  }
}

@Resolver(() => Project)
@Allow('SIGNED_IN')
export class ProjectContainersResolver {
  @FieldResolver(() => [Container], { description: "The project's dev containers, oldest first." })
  containers(@Root() p: RowOf<Project>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders.byForeignKey(containers(), 'project', selectedFields(info)).load(p.id);
  }
}
