import type { GraphQLResolveInfo } from 'graphql';
import sql from 'sql-template-tag';
import { Arg, Ctx, FieldResolver, Info, Int, Query, Resolver, Root, Subscription } from 'type-graphql';
import { subscription } from '../../events/subscription.js';
import { viewerOf, type Context } from '../../server/context.js';
import { Viewer } from '../../server/viewer.js';
import { Allow } from '../../shared/allow.js';
import { readModel } from '../../shared/read-model.js';
import { selectedFields } from '../../shared/selection.js';
import { Provider } from '../billing/provider.entity.js';
import { ApiToken } from '../identity/api-token.entity.js';
import { User } from '../identity/user.entity.js';
import { Project } from '../projects/project.entity.js';
import { Task } from '../work/task.entity.js';
// The estimator costs a plain list (`rows`) at NESTED_LIST_CAP items; a report page holds `first` rows.
import { NESTED_LIST_CAP } from '../../shared/loaders.js';
import { isHumanAdmin } from '../../shared/viewer.js';
import { USAGE_RECORDED, type UsageRecordedEvent } from './usage-report.events.js';
import { DEFAULT_REPORT_PAGE, MAX_REPORT_PAGE } from './usage-report.service.js';
import { UsageDimension, UsageRecorded, UsageReport, UsageReportWhere, UsageRow } from './usage-report.types.js';

@Resolver(() => UsageRow)
@Allow('OWN_ACCOUNT')
export class UsageReportResolver {
  @Query(() => UsageReport, {
    description:
      "AI calls grouped by any dimensions, with totals: admins see every call, a project's OWNER and MAINTAINERs its calls, everyone their own. " +
      'Blocked and failed calls count in `blocked` and `errors`, never in tokens or cost.',
    complexity: ({ args, childComplexity }) =>
      1 + childComplexity * Math.max(1, Math.ceil(Number(args.first ?? DEFAULT_REPORT_PAGE) / NESTED_LIST_CAP)),
  })
  usageReport(
    @Arg('groupBy', () => [UsageDimension]) groupBy: UsageDimension[],
    @Arg('where', () => UsageReportWhere, { nullable: true }) where: UsageReportWhere | null,
    @Arg('first', () => Int, {
      nullable: true,
      description: `Groups per page: ${DEFAULT_REPORT_PAGE} by default, at most ${MAX_REPORT_PAGE}`,
    })
    first: number | null,
    @Arg('after', () => String, { nullable: true, description: 'pageInfo.endCursor of the previous page' })
    after: string | null,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
  ) {
    return ctx.services.usageReports.report(viewer, { groupBy, where }, { first, after });
  }

  @FieldResolver(() => User, { nullable: true })
  user(@Root() r: UsageRow, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return r.userId ? ctx.loaders.byId(readModel(User), selectedFields(info)).load(r.userId) : null;
  }

  @FieldResolver(() => Project, {
    nullable: true,
    description: 'Null when there is none, or you may no longer see it.',
  })
  project(@Root() r: UsageRow, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return r.projectId
      ? ctx.loaders
          .byId(readModel(Project), selectedFields(info), ctx.services.projects.policy.visible(viewerOf(ctx), 't.id'))
          .load(r.projectId)
      : null;
  }

  @FieldResolver(() => Task, { nullable: true, description: 'Null when there is none, or you may no longer see it.' })
  task(@Root() r: UsageRow, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return r.taskId
      ? ctx.loaders
          .byId(readModel(Task), selectedFields(info), ctx.services.taskPolicy.visible(viewerOf(ctx), 't'))
          .load(r.taskId)
      : null;
  }

  @FieldResolver(() => Provider, { nullable: true })
  provider(@Root() r: UsageRow, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return r.providerId ? ctx.loaders.byId(readModel(Provider), selectedFields(info)).load(r.providerId) : null;
  }

  @FieldResolver(() => ApiToken, {
    nullable: true,
    description: "Null when there is none, or it is someone else's (admins see every token).",
  })
  apiToken(@Root() r: UsageRow, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    if (!r.apiTokenId) return null;
    const viewer = viewerOf(ctx);
    const mine = isHumanAdmin(viewer) ? undefined : sql`t.user_id = ${viewer.userId}::uuid`;
    return ctx.loaders.byId(readModel(ApiToken), selectedFields(info), mine).load(r.apiTokenId);
  }

  @Subscription(() => UsageRecorded, {
    description:
      'AI calls you may see in usageReport were recorded (once per recording statement): query the report again.',
    subscribe: ({ context }) => {
      const ctx = context as Context;
      return subscription<UsageRecordedEvent>(ctx, USAGE_RECORDED, (e, viewer, scope) =>
        ctx.services.usageReports.hears(e, viewer, scope),
      );
    },
  })
  usageRecorded(@Root() _e: UsageRecordedEvent): UsageRecorded {
    return { recordedAt: new Date() };
  }
}
