import type { GraphQLResolveInfo } from 'graphql';
import sql, { raw } from 'sql-template-tag';
import { Arg, Args, Ctx, ID, Info, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import { subscription } from '../../events/subscription.js';
import { viewerOf, type Context } from '../../server/context.js';
import { Allow } from '../../shared/allow.js';
import { ConnectionType, PageArgs, paginate } from '../../shared/connection.js';
import { BadInputError, NotFoundError, requireUuid } from '../../shared/errors.js';
import { and, readModel } from '../../shared/read-model.js';
import { inTransaction } from '../../shared/scope.js';
import { selectedFields } from '../../shared/selection.js';
import { PromptLog } from '../ai/prompt-log.entity.js';
import { Role, User } from '../identity/user.entity.js';
import { COST_ALERT_TRIGGERED, type CostAlertTriggered } from './billing.events.js';
import { PromptLogWhere, SetUserQuotaInput, Usage, UsageAggregate, UsageGroupBy, UsageWindow } from './billing.inputs.js';
import { CostAlert } from './cost-alert.entity.js';
import { formatMicros, toMicros } from './money.js';
import { UsagePeriod } from './usage-counter.entity.js';
import { UserQuota } from './user-quota.entity.js';

const PromptLogConnection = ConnectionType(PromptLog);
const CostAlertConnection = ConnectionType(CostAlert);

const GROUPS: Record<UsageGroupBy, string> = {
  [UsageGroupBy.USER]: 'user_id::text',
  [UsageGroupBy.PROVIDER]: 'provider',
  [UsageGroupBy.MODEL]: 'model',
  [UsageGroupBy.PROJECT]: 'project_id::text',
  [UsageGroupBy.AGENT]: 'agent_type',
  [UsageGroupBy.DAY]: `to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')`,
};

@Resolver()
@Allow('SIGNED_IN')
export class BillingResolver {
  @Allow('ADMIN')
  @Mutation(() => UserQuota, { description: 'A user\'s limits; a null field falls back to the tier\'s or the platform\'s default.' })
  setUserQuota(@Arg('input') input: SetUserQuotaInput, @Ctx() ctx: Context) {
    return ctx.services.quotas.setUserQuota(ctx, { ...input, userId: requireUuid(input.userId, 'userId') });
  }

  @Allow('OWN_ACCOUNT')
  @Query(() => Usage, { description: 'Your usage in the current UTC day or month, with your limits.' })
  myUsage(@Arg('period', () => UsageWindow) period: UsageWindow, @Ctx() ctx: Context) {
    return ctx.services.quotas.usage(ctx.em, viewerOf(ctx).userId, period === UsageWindow.DAY ? UsagePeriod.DAY : UsagePeriod.MONTH);
  }

  @Allow('ADMIN')
  @Query(() => Usage, { description: 'A user\'s usage in the current UTC day or month.' })
  userUsage(@Arg('userId', () => ID) userId: string, @Arg('period', () => UsageWindow) period: UsageWindow, @Ctx() ctx: Context) {
    return ctx.services.quotas.usage(ctx.em, requireUuid(userId, 'userId'), period === UsageWindow.DAY ? UsagePeriod.DAY : UsagePeriod.MONTH);
  }

  @Allow('ADMIN')
  @Query(() => [UsageAggregate], { description: 'Answered calls grouped by user, provider, model, project, agent or day (UTC), most expensive first.' })
  async usage(
    @Arg('groupBy', () => UsageGroupBy) groupBy: UsageGroupBy,
    @Arg('from', () => Date, { nullable: true }) from: Date | null,
    @Arg('to', () => Date, { nullable: true }) to: Date | null,
    @Ctx() ctx: Context,
  ) {
    if (from && to && from > to) throw BadInputError.field('from', 'must be before to');
    const rows = await ctx.runtime.db.query<{ key: string | null; requests: number; input: string; output: string; cost: string }>(sql`
      SELECT ${raw(GROUPS[groupBy])} AS key, count(*)::int AS requests, sum(input_tokens)::bigint AS input,
             sum(output_tokens)::bigint AS output, sum(total_cost)::numeric(18,6)::text AS cost
        FROM cost_records
       WHERE ${and([from ? sql`created_at >= ${from}` : null, to ? sql`created_at < ${to}` : null])}
       GROUP BY 1 ORDER BY sum(total_cost) DESC, 1 LIMIT 1000`);
    return rows.map((r) => ({ key: r.key, requests: r.requests, inputTokens: Number(r.input), outputTokens: Number(r.output), costUsd: formatMicros(toMicros(r.cost)) }));
  }

  @Allow('OWN_ACCOUNT')
  @Query(() => PromptLogConnection, { description: 'Every AI call, answered, blocked or failed: admins see all, others their own. Newest first.' })
  promptLogs(@Args() page: PageArgs, @Arg('where', () => PromptLogWhere, { nullable: true }) where: PromptLogWhere | null, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    const viewer = viewerOf(ctx);
    const w = where ?? {};
    const userId = viewer.role === Role.ADMIN ? w.userId : viewer.userId;
    return paginate(
      ctx.runtime.db,
      {
        model: readModel(PromptLog),
        fields: selectedFields(info, ['edges', 'node']),
        where: and([
          userId ? sql`t.user_id = ${userId}::uuid` : null,
          w.status?.length ? sql`t.status = ANY(${w.status}::prompt_status[])` : null,
          w.intent ? sql`t.intent = ${w.intent}` : null,
          w.taskId ? sql`t.task_id = ${w.taskId}::uuid` : null,
          w.conversationId ? sql`t.conversation_id = ${w.conversationId}::uuid` : null,
        ]),
        sort: { property: 'createdAt', direction: 'DESC', type: 'timestamptz' },
      },
      page,
    );
  }

  @Allow('OWN_ACCOUNT')
  @Query(() => CostAlertConnection, { description: 'Your cost alerts (admins: everyone\'s), newest first.' })
  costAlerts(@Args() page: PageArgs, @Arg('unacknowledgedOnly', () => Boolean, { defaultValue: false }) unacknowledgedOnly: boolean, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    const viewer = viewerOf(ctx);
    return paginate(
      ctx.runtime.db,
      {
        model: readModel(CostAlert),
        fields: selectedFields(info, ['edges', 'node']),
        where: and([viewer.role === Role.ADMIN ? null : sql`t.user_id = ${viewer.userId}::uuid`, unacknowledgedOnly ? sql`NOT t.acknowledged` : null]),
        sort: { property: 'id', direction: 'DESC', type: 'uuid' },
      },
      page,
    );
  }

  @Allow('OWN_ACCOUNT')
  @Mutation(() => CostAlert)
  acknowledgeCostAlert(@Arg('id', () => ID) id: string, @Ctx() ctx: Context) {
    const viewer = viewerOf(ctx);
    const alertId = requireUuid(id);
    return inTransaction(ctx, async (tx) => {
      const alert = await tx.em.findOne(CostAlert, alertId);
      if (!alert || (alert.user.id !== viewer.userId && viewer.role !== Role.ADMIN)) throw new NotFoundError('CostAlert', alertId);
      if (!alert.acknowledged) {
        alert.acknowledged = true;
        alert.acknowledgedAt = new Date();
        ctx.services.audit.record(tx, { action: 'costAlert.acknowledge', entityType: 'CostAlert', entityId: alert.id });
      }
      return alert;
    });
  }

  @Allow('ADMIN')
  @Mutation(() => User, { description: 'Sets a user\'s prompt-governance deviation score back to 0 (unblocking is unblockUser).' })
  async resetDeviationScore(@Arg('userId', () => ID) userId: string, @Ctx() ctx: Context) {
    const id = requireUuid(userId, 'userId');
    return inTransaction(ctx, async (tx) => {
      const user = await tx.em.findOne(User, id);
      if (!user) throw new NotFoundError('User', id);
      const before = user.deviationScore;
      user.deviationScore = '0';
      ctx.services.audit.record(tx, { action: 'user.resetDeviationScore', entityType: 'User', entityId: id, before: { deviationScore: before }, after: { deviationScore: '0' } });
      return user;
    });
  }

  @Allow('OWN_ACCOUNT')
  @Subscription(() => CostAlert, {
    description: 'Cost alerts as they trigger: to the user concerned and to admins.',
    subscribe: ({ context }) => subscription<CostAlertTriggered>(context as Context, COST_ALERT_TRIGGERED, (e, viewer) => viewer.role === Role.ADMIN || e.userId === viewer.userId),
  })
  costAlertTriggered(@Root() e: CostAlertTriggered, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders.byId(readModel(CostAlert), selectedFields(info)).load(e.alertId);
  }
}
