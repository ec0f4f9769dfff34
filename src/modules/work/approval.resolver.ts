import type { GraphQLResolveInfo } from 'graphql';
import { Arg, Args, Ctx, FieldResolver, ID, Info, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import type { EventScope, Hears } from '../../events/subscription.js';
import type { Context } from '../../server/context.js';
import { Viewer } from '../../server/viewer.js';
import { Allow } from '../../shared/allow.js';
import { ConnectionType, PageArgs } from '../../shared/connection.js';
import { isUuid } from '../../shared/errors.js';
import { idOf, readModel, type RowOf } from '../../shared/read-model.js';
import { selectedFields } from '../../shared/selection.js';
import { visibleProject, visibleTask } from '../../shared/visibility.js';
import { User } from '../identity/user.entity.js';
import { Project } from '../projects/project.entity.js';
import { Approval, ApprovalStatus } from './approval.entity.js';
import { APPROVAL_DECIDED, APPROVAL_REQUESTED, type ApprovalEvent } from './approval.events.js';
import { ApprovalWhere, DecideApprovalInput, RequestApprovalInput } from './approval.inputs.js';
import { Task } from './task.entity.js';
import { onTopic } from '../../server/subscribe.js';

const ApprovalConnection = ConnectionType(Approval);
const approvals = () => readModel(Approval);

/** Approval events, of one project when `projectId` is given, to those `hears` lets in. */
function inProject(
  projectId: string | null | undefined,
  hears: (viewer: Viewer, e: ApprovalEvent, scope: EventScope) => Promise<boolean>,
): Hears<ApprovalEvent> {
  return (e, viewer, scope) => (!projectId || e.projectId === projectId) && hears(viewer, e, scope);
}

@Resolver(() => Approval)
@Allow('SIGNED_IN')
export class ApprovalResolver {
  @Query(() => Approval, { nullable: true })
  approval(
    @Arg('id', () => ID) id: string,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    if (!isUuid(id)) return null;
    return ctx.loaders
      .byId(approvals(), selectedFields(info), ctx.services.approvals.visible(viewer))
      .load(id.toLowerCase());
  }

  @Query(() => ApprovalConnection, {
    description: 'Approvals you may see, newest first; awaitingMe: those waiting for your decision.',
  })
  approvals(
    @Args() page: PageArgs,
    @Arg('where', () => ApprovalWhere, { nullable: true }) where: ApprovalWhere | null,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.services.approvals.list(viewer, selectedFields(info, ['edges', 'node']), where ?? {}, page);
  }

  @FieldResolver(() => User, {
    nullable: true,
    description: 'The requesting user; null when a system actor asked (see requestedByActor).',
  })
  requestedBy(@Root() a: RowOf<Approval>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders.relation(a.requestedBy, readModel(User), selectedFields(info));
  }

  @FieldResolver(() => User, { nullable: true })
  decidedBy(@Root() a: RowOf<Approval>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders.relation(a.decidedBy, readModel(User), selectedFields(info));
  }

  @FieldResolver(() => Task, { nullable: true, description: 'Null when there is none, or you may no longer see it.' })
  task(@Root() a: RowOf<Approval>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return visibleTask(ctx, info, idOf(a.task));
  }

  @FieldResolver(() => Project, {
    nullable: true,
    description: 'Null when there is none, or you may no longer see it.',
  })
  project(@Root() a: RowOf<Approval>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return visibleProject(ctx, info, idOf(a.project));
  }

  @Allow('SIGNED_IN', 'SERVICE')
  @Mutation(() => Approval, {
    description: 'By a user (CONTRIBUTOR+), or by a service token acting as a system actor such as an agent.',
  })
  requestApproval(@Arg('input') input: RequestApprovalInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.approvals.request(ctx, viewer, input);
  }

  @Mutation(() => Approval, {
    description: "Admins and the project's OWNER/MAINTAINERs; never the requester; only while PENDING.",
  })
  approveApproval(@Arg('input') input: DecideApprovalInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.approvals.decide(ctx, viewer, input.id, ApprovalStatus.APPROVED, input.notes);
  }

  @Mutation(() => Approval, {
    description: "Admins and the project's OWNER/MAINTAINERs; never the requester; only while PENDING.",
  })
  rejectApproval(@Arg('input') input: DecideApprovalInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.approvals.decide(ctx, viewer, input.id, ApprovalStatus.REJECTED, input.notes);
  }

  @Subscription(() => Approval, {
    description: 'New requests, to those who may decide them.',
    subscribe: onTopic<ApprovalEvent>(APPROVAL_REQUESTED, ({ ctx, args }) =>
      inProject(args.projectId, (v, e, scope) => ctx.services.approvals.hearsRequest(v, e, scope)),
    ),
  })
  approvalRequested(
    @Root() e: ApprovalEvent,
    @Arg('projectId', () => ID, { nullable: true }) _p: string | null,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.loaders.byId(approvals(), selectedFields(info)).load(e.approvalId);
  }

  @Subscription(() => Approval, {
    description: 'Decisions (and expiries), to the requester and those who may decide.',
    subscribe: onTopic<ApprovalEvent>(APPROVAL_DECIDED, ({ ctx, args }) =>
      inProject(args.projectId, (v, e, scope) => ctx.services.approvals.hearsDecision(v, e, scope)),
    ),
  })
  approvalDecided(
    @Root() e: ApprovalEvent,
    @Arg('projectId', () => ID, { nullable: true }) _p: string | null,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.loaders.byId(approvals(), selectedFields(info)).load(e.approvalId);
  }
}
