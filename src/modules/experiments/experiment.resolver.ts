import type { GraphQLResolveInfo } from 'graphql';
import { Arg, Args, Ctx, FieldResolver, ID, Info, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import { viewerOf, type Context } from '../../server/context.js';
import { Viewer } from '../../server/viewer.js';
import { Allow } from '../../shared/allow.js';
import { ConnectionType, PageArgs } from '../../shared/connection.js';
import { isUuid, requireUuid } from '../../shared/errors.js';
import { idOf, readModel, type RowOf } from '../../shared/read-model.js';
import { selectedFields } from '../../shared/selection.js';
import { required, visibleApproval, visibleProject } from '../../shared/visibility.js';
import { User } from '../identity/user.entity.js';
import { Project } from '../projects/project.entity.js';
import { Approval } from '../work/approval.entity.js';
import { ComparisonReport, Evaluation, Experiment, Promotion, Verdict } from './experiment.entity.js';
import {
  CreateExperimentInput,
  CreatePolicyInput,
  DecideReevaluationInput,
  DegradeVersionInput,
  ExperimentWhere,
  OverrideEvaluationInput,
  ProjectPolicyInput,
  ProposePromotionInput,
  QuarantineExperimentInput,
  RequestReevaluationInput,
  SetBaselineInput,
  SetExperimentStatusInput,
  SetPolicyActiveInput,
  SubmitEvaluationInput,
  UpdateVersionInput,
} from './experiment.inputs.js';
import { EXPERIMENT_STATUS_CHANGED, type ExperimentEvent } from './experiments.events.js';
import { Policy } from './policy.entity.js';
import { QuarantineRecord, ReevaluationRequest } from './quarantine.entity.js';
import { Baseline, Version, VersionHistory } from './version.entity.js';
import { onTopic } from '../../server/subscribe.js';

const ExperimentConnection = ConnectionType(Experiment);
const VersionHistoryConnection = ConnectionType(VersionHistory);
const PromotionConnection = ConnectionType(Promotion);
const ComparisonReportConnection = ConnectionType(ComparisonReport);
const QuarantineRecordConnection = ConnectionType(QuarantineRecord);

const user = (ctx: Context, info: GraphQLResolveInfo, id: string | null) =>
  ctx.loaders.relation(id, readModel(User), selectedFields(info));
const byId = (ctx: Context, info: GraphQLResolveInfo, entity: { name: string }, id: string | null) =>
  ctx.loaders.relation(id, readModel(entity), selectedFields(info));

/** A project's rows of `entity`, newest first, for the project's readers. */
const projectPage = (
  ctx: Context,
  entity: { name: string },
  projectId: string,
  page: PageArgs,
  info: GraphQLResolveInfo,
) =>
  ctx.services.experiments.projectRows(viewerOf(ctx), entity, projectId, selectedFields(info, ['edges', 'node']), page);

@Resolver(() => Experiment)
@Allow('SIGNED_IN')
export class ExperimentResolver {
  @Allow('SIGNED_IN', 'SERVICE')
  @Query(() => Experiment, { nullable: true })
  experiment(
    @Arg('id', () => ID) id: string,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    if (!isUuid(id)) return null;
    return ctx.loaders
      .byId(readModel(Experiment), selectedFields(info), ctx.services.experiments.visible(viewer))
      .load(id.toLowerCase());
  }

  @Allow('SIGNED_IN', 'SERVICE')
  @Query(() => ExperimentConnection, { description: "A project's experiments, newest first." })
  experiments(
    @Arg('projectId', () => ID) projectId: string,
    @Args() page: PageArgs,
    @Arg('where', () => ExperimentWhere, { nullable: true }) where: ExperimentWhere | null,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.services.experiments.experiments(
      viewer,
      projectId,
      selectedFields(info, ['edges', 'node']),
      where ?? {},
      page,
    );
  }

  @FieldResolver(() => Project)
  project(@Root() e: RowOf<Experiment>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return required(visibleProject(ctx, info, idOf(e.project)), 'Project', idOf(e.project));
  }

  @FieldResolver(() => User, { nullable: true })
  createdBy(@Root() e: RowOf<Experiment>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return user(ctx, info, idOf(e.createdBy));
  }

  @FieldResolver(() => [Evaluation], { description: 'Oldest first; the last is the current one.' })
  evaluations(@Root() e: RowOf<Experiment>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders.byForeignKey(readModel(Evaluation), 'experiment', selectedFields(info)).load(e.id);
  }

  @FieldResolver(() => [Promotion])
  promotions(@Root() e: RowOf<Experiment>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders.byForeignKey(readModel(Promotion), 'experiment', selectedFields(info)).load(e.id);
  }

  @Allow('SIGNED_IN', 'SERVICE')
  @Mutation(() => Experiment, {
    description: "In V1; CONTRIBUTOR+. CONFLICT, naming the quarantine record, when the config's hash is quarantined.",
  })
  createExperiment(@Arg('input') input: CreateExperimentInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.experiments.createExperiment(ctx, viewer, input);
  }

  @Allow('SIGNED_IN', 'SERVICE')
  @Mutation(() => Experiment, {
    description: 'CREATED → RUNNING → COMPLETED | FAILED; anything else is BAD_USER_INPUT.',
  })
  setExperimentStatus(@Arg('input') input: SetExperimentStatusInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.experiments.setStatus(ctx, viewer, input);
  }

  @Allow('SIGNED_IN', 'SERVICE')
  @Mutation(() => Evaluation, {
    description:
      'Metrics of a COMPLETED experiment (→ EVALUATING), judged against the active baselines; a FAIL quarantines the config.',
  })
  submitEvaluation(@Arg('input') input: SubmitEvaluationInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.experiments.submitEvaluation(ctx, viewer, input);
  }

  @Mutation(() => Evaluation, {
    description: "A human verdict over the AI's, with a reason (audited). MAINTAINER+, while EVALUATING.",
  })
  overrideEvaluation(@Arg('input') input: OverrideEvaluationInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.experiments.override(ctx, viewer, input);
  }

  @Mutation(() => Promotion, {
    description: 'V1 → V2 for a PASSing experiment: opens an approval (actionType experiment.promote).',
  })
  proposePromotion(@Arg('input') input: ProposePromotionInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.experiments.proposePromotion(ctx, viewer, input);
  }

  @Allow('ADMIN')
  @Mutation(() => QuarantineRecord, { description: "Admins: quarantines an EVALUATING experiment's config." })
  quarantineExperiment(@Arg('input') input: QuarantineExperimentInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.experiments.quarantineExperiment(ctx, viewer, input);
  }

  @Subscription(() => Experiment, {
    description: 'Experiments of the project created or changing status, to its readers.',
    subscribe: onTopic<ExperimentEvent>(
      EXPERIMENT_STATUS_CHANGED,
      ({ ctx, args }) =>
        (e, viewer, scope) =>
          e.projectId === String(args.projectId).toLowerCase() && ctx.services.experiments.hears(viewer, e, scope),
    ),
  })
  experimentStatusChanged(
    @Root() e: ExperimentEvent,
    @Arg('projectId', () => ID) _p: string,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.loaders.byId(readModel(Experiment), selectedFields(info)).load(e.experimentId);
  }
}

@Resolver(() => Version)
@Allow('SIGNED_IN')
export class VersionResolver {
  @Query(() => [Version], { description: "The project's V1, V2 and V3 (created on first use)." })
  projectVersions(@Arg('projectId', () => ID) projectId: string, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.experiments.versions(ctx, viewer, projectId);
  }

  @Query(() => VersionHistoryConnection, { description: "Every change of the project's versions, newest first." })
  versionHistory(
    @Arg('projectId', () => ID) projectId: string,
    @Args() page: PageArgs,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.services.experiments.historyOf(
      viewer,
      requireUuid(projectId, 'projectId'),
      selectedFields(info, ['edges', 'node']),
      page,
    );
  }

  @Query(() => [Baseline])
  baselines(@Arg('projectId', () => ID) projectId: string, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.experiments.baselines(viewer, projectId);
  }

  @FieldResolver(() => User, { nullable: true })
  promotedBy(@Root() v: RowOf<Version>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return user(ctx, info, idOf(v.promotedBy));
  }

  @Mutation(() => Version, { description: 'New model config and/or changelog; history UPDATED. MAINTAINER+.' })
  updateVersion(@Arg('input') input: UpdateVersionInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.experiments.updateVersion(ctx, viewer, input);
  }

  @Mutation(() => Version, {
    description:
      "V2 → V3 with a reason: V3 takes V2's config, V2 is emptied; history DEGRADED. MAINTAINER+. Returns V3.",
  })
  degradeVersion(@Arg('input') input: DegradeVersionInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.experiments.degrade(ctx, viewer, input);
  }

  @Mutation(() => Baseline, { description: 'Creates or changes the baseline of a metric. MAINTAINER+.' })
  setBaseline(@Arg('input') input: SetBaselineInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.experiments.setBaseline(ctx, viewer, input);
  }
}

@Resolver(() => VersionHistory)
@Allow('SIGNED_IN')
export class VersionHistoryResolver {
  @FieldResolver(() => User, { nullable: true })
  actor(@Root() h: RowOf<VersionHistory>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return user(ctx, info, idOf(h.actor));
  }
}

@Resolver(() => Evaluation)
@Allow('SIGNED_IN')
export class EvaluationResolver {
  @FieldResolver(() => Verdict, {
    description: 'The effective verdict: the human override if any, else the AI verdict.',
  })
  verdict(@Root() e: RowOf<Evaluation>): Verdict {
    return e.humanOverride ?? e.aiVerdict;
  }

  @FieldResolver(() => User, { nullable: true })
  overriddenBy(@Root() e: RowOf<Evaluation>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return user(ctx, info, idOf(e.overriddenBy));
  }
}

@Resolver(() => Promotion)
@Allow('SIGNED_IN')
export class PromotionResolver {
  @Query(() => PromotionConnection, { description: "A project's promotions, newest first." })
  promotions(
    @Arg('projectId', () => ID) projectId: string,
    @Args() page: PageArgs,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return projectPage(ctx, Promotion, projectId, page, info);
  }

  @Query(() => ComparisonReportConnection, { description: "A project's comparison reports, newest first." })
  comparisonReports(
    @Arg('projectId', () => ID) projectId: string,
    @Args() page: PageArgs,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return projectPage(ctx, ComparisonReport, projectId, page, info);
  }

  @FieldResolver(() => Experiment)
  experiment(@Root() p: RowOf<Promotion>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return byId(ctx, info, Experiment, idOf(p.experiment));
  }

  @FieldResolver(() => Approval)
  approval(@Root() p: RowOf<Promotion>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return required(visibleApproval(ctx, info, idOf(p.approval)), 'Approval', idOf(p.approval));
  }

  @FieldResolver(() => User, { nullable: true })
  requestedBy(@Root() p: RowOf<Promotion>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return user(ctx, info, idOf(p.requestedBy));
  }

  @FieldResolver(() => ComparisonReport, { nullable: true, description: 'Stored when the promotion was approved.' })
  async comparisonReport(@Root() p: RowOf<Promotion>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    const rows = await ctx.loaders
      .byForeignKey(readModel(ComparisonReport), 'promotion', selectedFields(info))
      .load(p.id);
    return rows[0] ?? null;
  }
}

@Resolver(() => ComparisonReport)
@Allow('SIGNED_IN')
export class ComparisonReportResolver {
  @FieldResolver(() => Experiment)
  experiment(@Root() r: RowOf<ComparisonReport>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return byId(ctx, info, Experiment, idOf(r.experiment));
  }

  @FieldResolver(() => Version)
  version(@Root() r: RowOf<ComparisonReport>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return byId(ctx, info, Version, idOf(r.version));
  }
}

@Resolver(() => QuarantineRecord)
@Allow('SIGNED_IN')
export class QuarantineResolver {
  @Query(() => QuarantineRecordConnection, {
    description: "The project's blacklist: one record per quarantined config hash, newest first.",
  })
  quarantineRecords(
    @Arg('projectId', () => ID) projectId: string,
    @Args() page: PageArgs,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return projectPage(ctx, QuarantineRecord, projectId, page, info);
  }

  @FieldResolver(() => Experiment, {
    nullable: true,
    description: 'The experiment that got the config quarantined (last time)',
  })
  experiment(@Root() r: RowOf<QuarantineRecord>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return byId(ctx, info, Experiment, idOf(r.experiment));
  }

  @FieldResolver(() => [ReevaluationRequest])
  reevaluationRequests(@Root() r: RowOf<QuarantineRecord>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders
      .byForeignKey(readModel(ReevaluationRequest), 'quarantineRecord', selectedFields(info))
      .load(r.id);
  }

  @Mutation(() => ReevaluationRequest, {
    description: 'Puts a QUARANTINED config up for re-evaluation (UNDER_REVIEW until an admin decides). CONTRIBUTOR+.',
  })
  requestReevaluation(@Arg('input') input: RequestReevaluationInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.experiments.requestReevaluation(ctx, viewer, input);
  }

  @Allow('ADMIN')
  @Mutation(() => ReevaluationRequest, {
    description: 'Admins: approve (the config may run again: APPROVED_RETRY) or reject (stays QUARANTINED).',
  })
  decideReevaluation(@Arg('input') input: DecideReevaluationInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.experiments.decideReevaluation(ctx, viewer, input);
  }
}

@Resolver(() => ReevaluationRequest)
@Allow('SIGNED_IN')
export class ReevaluationRequestResolver {
  @FieldResolver(() => User, { nullable: true })
  requestedBy(@Root() r: RowOf<ReevaluationRequest>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return user(ctx, info, idOf(r.requestedBy));
  }

  @FieldResolver(() => User, { nullable: true })
  decidedBy(@Root() r: RowOf<ReevaluationRequest>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return user(ctx, info, idOf(r.decidedBy));
  }
}

@Resolver(() => Policy)
@Allow('SIGNED_IN')
export class PolicyResolver {
  @Query(() => [Policy], { description: 'Every stored policy, by name.' })
  policies(@Ctx() ctx: Context) {
    return ctx.services.experiments.policies();
  }

  @Query(() => [Policy], { description: 'The policies attached to a project (active or not).' })
  projectPolicies(@Arg('projectId', () => ID) projectId: string, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.experiments.projectPolicies(viewer, projectId);
  }

  @Allow('ADMIN')
  @Mutation(() => Policy)
  createPolicy(@Arg('input') input: CreatePolicyInput, @Ctx() ctx: Context) {
    return ctx.services.experiments.createPolicy(ctx, input);
  }

  @Allow('ADMIN')
  @Mutation(() => Policy, { description: 'Switches a policy on or off everywhere it is attached.' })
  setPolicyActive(@Arg('input') input: SetPolicyActiveInput, @Ctx() ctx: Context) {
    return ctx.services.experiments.setPolicyActive(ctx, input);
  }

  @Mutation(() => Boolean, { description: 'MAINTAINER+. false when it was already attached.' })
  attachPolicy(@Arg('input') input: ProjectPolicyInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.experiments.attachPolicy(ctx, viewer, input, true);
  }

  @Mutation(() => Boolean, { description: 'MAINTAINER+. false when it was not attached.' })
  detachPolicy(@Arg('input') input: ProjectPolicyInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.experiments.attachPolicy(ctx, viewer, input, false);
  }
}
