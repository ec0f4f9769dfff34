import type { GraphQLResolveInfo } from 'graphql';
import { Arg, Args, Ctx, ID, Info, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import type { Context } from '../../server/context.js';
import { Viewer } from '../../server/viewer.js';
import { Allow } from '../../shared/allow.js';
import { ConnectionType, PageArgs } from '../../shared/connection.js';
import { requireUuid } from '../../shared/errors.js';
import { readModel } from '../../shared/read-model.js';
import { selectedFields } from '../../shared/selection.js';
import { PromptLog } from '../ai/prompt-log.entity.js';
import { User } from '../identity/index.js';
import { COST_ALERT_TRIGGERED, type CostAlertTriggered } from './billing.events.js';
import {
  PromptLogWhere,
  SetUserQuotaInput,
  Usage,
  UsageAggregate,
  UsageGroupBy,
  UsageWindow,
} from './billing.inputs.js';
import { CostAlert } from './cost-alert.entity.js';
import { UsagePeriod } from './usage-counter.entity.js';
import { UserQuota } from './user-quota.entity.js';
import { onTopic } from '../../server/subscribe.js';

const PromptLogConnection = ConnectionType(PromptLog);
const CostAlertConnection = ConnectionType(CostAlert);

const periodOf = (w: UsageWindow) => (w === UsageWindow.DAY ? UsagePeriod.DAY : UsagePeriod.MONTH);

@Resolver()
@Allow('SIGNED_IN')
export class BillingResolver {
  @Allow('ADMIN')
  @Mutation(() => UserQuota, {
    description: "A user's limits; a null field falls back to the tier's or the platform's default.",
  })
  setUserQuota(@Arg('input') input: SetUserQuotaInput, @Ctx() ctx: Context) {
    return ctx.services.quotas.setUserQuota(ctx, { ...input, userId: requireUuid(input.userId, 'userId') });
  }

  @Allow('OWN_ACCOUNT')
  @Query(() => Usage, { description: 'Your usage in the current UTC day or month, with your limits.' })
  myUsage(@Arg('period', () => UsageWindow) period: UsageWindow, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.quotas.usage(ctx.em, viewer.userId, periodOf(period));
  }

  @Allow('ADMIN')
  @Query(() => Usage, { description: "A user's usage in the current UTC day or month." })
  userUsage(
    @Arg('userId', () => ID) userId: string,
    @Arg('period', () => UsageWindow) period: UsageWindow,
    @Ctx() ctx: Context,
  ) {
    return ctx.services.quotas.usage(ctx.em, requireUuid(userId, 'userId'), periodOf(period));
  }

  @Allow('ADMIN')
  @Query(() => [UsageAggregate], {
    description: 'Answered calls grouped by user, provider, model, project, agent or day (UTC), most expensive first.',
  })
  usage(
    @Arg('groupBy', () => UsageGroupBy) groupBy: UsageGroupBy,
    @Arg('from', () => Date, { nullable: true }) from: Date | null,
    @Arg('to', () => Date, { nullable: true }) to: Date | null,
    @Ctx() ctx: Context,
  ) {
    return ctx.services.billing.usage(groupBy, from, to);
  }

  @Allow('OWN_ACCOUNT')
  @Query(() => PromptLogConnection, {
    description: 'Every AI call, answered, blocked or failed: admins see all, others their own. Newest first.',
  })
  promptLogs(
    @Args() page: PageArgs,
    @Arg('where', () => PromptLogWhere, { nullable: true }) where: PromptLogWhere | null,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.services.billing.promptLogs(viewer, selectedFields(info, ['edges', 'node']), where ?? {}, page);
  }

  @Allow('OWN_ACCOUNT')
  @Query(() => CostAlertConnection, { description: "Your cost alerts (admins: everyone's), newest first." })
  costAlerts(
    @Args() page: PageArgs,
    @Arg('unacknowledgedOnly', () => Boolean, { defaultValue: false }) unacknowledgedOnly: boolean,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.services.billing.costAlerts(viewer, selectedFields(info, ['edges', 'node']), unacknowledgedOnly, page);
  }

  @Allow('OWN_ACCOUNT')
  @Mutation(() => CostAlert)
  acknowledgeCostAlert(@Arg('id', () => ID) id: string, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.billing.acknowledgeCostAlert(ctx, viewer, id);
  }

  @Allow('ADMIN')
  @Mutation(() => User, {
    description: "Sets a user's prompt-governance deviation score back to 0 (unblocking is unblockUser).",
  })
  resetDeviationScore(@Arg('userId', () => ID) userId: string, @Ctx() ctx: Context) {
    return ctx.services.billing.resetDeviationScore(ctx, userId);
  }

  @Allow('OWN_ACCOUNT')
  @Subscription(() => CostAlert, {
    description: 'Cost alerts as they trigger: to the user concerned and to admins.',
    subscribe: onTopic<CostAlertTriggered>(
      COST_ALERT_TRIGGERED,
      ({ ctx }) =>
        (e, viewer) =>
          ctx.services.billing.hearsCostAlert(viewer, e),
    ),
  })
  costAlertTriggered(@Root() e: CostAlertTriggered, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders.byId(readModel(CostAlert), selectedFields(info)).load(e.alertId);
  }
}
