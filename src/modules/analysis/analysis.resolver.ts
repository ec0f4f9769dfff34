import type { GraphQLResolveInfo } from 'graphql';
import {
  Arg,
  Args,
  Ctx,
  Field,
  FieldResolver,
  ID,
  Info,
  Int,
  Mutation,
  ObjectType,
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
import { idOf, readModel, type RowOf } from '../../shared/read-model.js';
import { selectedFields } from '../../shared/selection.js';
import { required, visibleProject } from '../../shared/visibility.js';
import { User } from '../identity/user.entity.js';
import { Project } from '../projects/project.entity.js';
import { AnalysisSession, AnalysisTask, AnalysisTaskType, Artifact, CodeReviewResult } from './analysis.entity.js';
import {
  ANALYSIS_SESSION_UPDATED,
  ANALYSIS_TASK_QUEUED,
  type AnalysisSessionEvent,
  type AnalysisTaskQueuedEvent,
} from './analysis.events.js';
import {
  AddArtifactInput,
  AddCodeReviewResultInput,
  CreateAnalysisSessionInput,
  ReportAnalysisTaskInput,
} from './analysis.inputs.js';
import { onTopic } from '../../server/subscribe.js';

const AnalysisSessionConnection = ConnectionType(AnalysisSession);

/** What workers hear: tasks of these types were queued in a session. */
@ObjectType('AnalysisTaskQueued', { simpleResolvers: true })
export class AnalysisTaskQueuedType {
  @Field(() => ID) sessionId!: string;
  @Field(() => ID) projectId!: string;
  @Field(() => [AnalysisTaskType]) types!: AnalysisTaskType[];
  @Field(() => Int) count!: number;
}

@Resolver(() => AnalysisSession)
@Allow('SIGNED_IN')
export class AnalysisSessionResolver {
  @Allow('SIGNED_IN', 'SERVICE')
  @Query(() => AnalysisSession, { nullable: true })
  analysisSession(
    @Arg('id', () => ID) id: string,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    if (!isUuid(id)) return null;
    return ctx.loaders
      .byId(readModel(AnalysisSession), selectedFields(info), ctx.services.analysis.visible(viewer))
      .load(id.toLowerCase());
  }

  @Query(() => AnalysisSessionConnection, { description: "A project's analysis sessions, newest first." })
  analysisSessions(
    @Arg('projectId', () => ID) projectId: string,
    @Args() page: PageArgs,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.services.analysis.sessions(viewer, projectId, selectedFields(info, ['edges', 'node']), page);
  }

  @FieldResolver(() => Project)
  project(@Root() s: RowOf<AnalysisSession>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return required(visibleProject(ctx, info, idOf(s.project)), 'Project', idOf(s.project));
  }

  @FieldResolver(() => User, { nullable: true })
  user(@Root() s: RowOf<AnalysisSession>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders.relation(s.user, readModel(User), selectedFields(info));
  }

  @FieldResolver(() => [AnalysisTask])
  tasks(@Root() s: RowOf<AnalysisSession>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders.byForeignKey(readModel(AnalysisTask), 'session', selectedFields(info)).load(s.id);
  }

  @FieldResolver(() => [Artifact])
  artifacts(@Root() s: RowOf<AnalysisSession>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders.byForeignKey(readModel(Artifact), 'session', selectedFields(info)).load(s.id);
  }

  @FieldResolver(() => [CodeReviewResult])
  codeReviews(@Root() s: RowOf<AnalysisSession>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders.byForeignKey(readModel(CodeReviewResult), 'session', selectedFields(info)).load(s.id);
  }

  @Allow('SIGNED_IN', 'SERVICE')
  @Mutation(() => AnalysisSession, { description: 'A session with its tasks, queued for workers. CONTRIBUTOR+.' })
  createAnalysisSession(
    @Arg('input') input: CreateAnalysisSessionInput,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
  ) {
    return ctx.services.analysis.createSession(ctx, viewer, input);
  }

  @Allow('SERVICE')
  @Mutation(() => AnalysisTask, {
    nullable: true,
    description:
      'Workers: the oldest claimable task of these types (any when empty; of one project when given) with a lease, or null.',
  })
  claimAnalysisTask(
    @Arg('types', () => [AnalysisTaskType], { nullable: true }) types: AnalysisTaskType[] | null,
    @Arg('projectId', () => ID, { nullable: true }) projectId: string | null,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
  ) {
    return ctx.services.analysis.claim(ctx, viewer, types ?? [], projectId);
  }

  @Allow('SERVICE')
  @Mutation(() => AnalysisTask, {
    description: 'Workers: the result (or error) of a claimed task; CONFLICT when the lease is no longer yours.',
  })
  reportAnalysisTask(@Arg('input') input: ReportAnalysisTaskInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.analysis.report(ctx, viewer, input);
  }

  @Allow('SERVICE')
  @Mutation(() => Artifact)
  addAnalysisArtifact(@Arg('input') input: AddArtifactInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.analysis.addArtifact(ctx, viewer, input);
  }

  @Allow('SERVICE')
  @Mutation(() => CodeReviewResult)
  addCodeReviewResult(@Arg('input') input: AddCodeReviewResultInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.analysis.addCodeReview(ctx, viewer, input);
  }

  @Allow('SERVICE')
  @Subscription(() => AnalysisTaskQueuedType, {
    description: 'Workers: tasks (of these types) were queued.',
    subscribe: onTopic<AnalysisTaskQueuedEvent>(ANALYSIS_TASK_QUEUED, ({ args }) => {
      const types = (args.types ?? []) as AnalysisTaskType[];
      return (e) => !types.length || e.types.some((t) => types.includes(t));
    }),
  })
  analysisTaskQueued(
    @Root() e: AnalysisTaskQueuedEvent,
    @Arg('types', () => [AnalysisTaskType], { nullable: true }) _t: AnalysisTaskType[] | null,
  ) {
    return e;
  }

  @Subscription(() => AnalysisSession, {
    description: 'A session of the project changed status, to its members.',
    subscribe: onTopic<AnalysisSessionEvent>(
      ANALYSIS_SESSION_UPDATED,
      ({ ctx, args }) =>
        (e, viewer, scope) =>
          e.projectId === String(args.projectId).toLowerCase() && ctx.services.analysis.hearsSession(viewer, e, scope),
    ),
  })
  analysisSessionUpdated(
    @Root() e: AnalysisSessionEvent,
    @Arg('projectId', () => ID) _p: string,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.loaders.byId(readModel(AnalysisSession), selectedFields(info)).load(e.sessionId);
  }
}
