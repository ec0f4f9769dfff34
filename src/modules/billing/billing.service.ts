import sql, { raw } from 'sql-template-tag';

import type { SqlClient } from '../../db/sql.js';
import { paginate, type PageArgs } from '../../shared/connection.js';
import { BadInputError, NotFoundError, requireUuid } from '../../shared/errors.js';
import { and, readModel } from '../../shared/read-model.js';
import { inTransaction, type Scope, type Viewer } from '../../shared/scope.js';
import { isHumanAdmin } from '../../shared/viewer.js';
import { PromptLog } from '../ai/prompt-log.entity.js';
import type { AuditService } from '../audit/index.js';
import { User } from '../identity/index.js';
import type { CostAlertTriggered } from './billing.events.js';
import { UsageGroupBy, type PromptLogWhere } from './billing.inputs.js';
import { CostAlert } from './cost-alert.entity.js';
import { formatMicros, toMicros } from './money.js';

export interface BillingServiceDeps {
  db: SqlClient;
  audit: AuditService;
}

/** The SQL expression each usage report groups by. */
const GROUPS: Record<UsageGroupBy, string> = {
  [UsageGroupBy.USER]: 'user_id::text',
  [UsageGroupBy.PROVIDER]: 'provider',
  [UsageGroupBy.MODEL]: 'model',
  [UsageGroupBy.PROJECT]: 'project_id::text',
  [UsageGroupBy.AGENT]: 'agent_type',
  [UsageGroupBy.DAY]: `to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')`,
};

/**
 * What billing reports and lets people change besides quotas: usage grouped for admins,
 * the prompt log and cost alerts (a person sees their own rows, a human admin everyone's;
 * a service token is never an admin here), and the prompt-governance deviation score.
 */
export class BillingService {
  constructor(private readonly deps: BillingServiceDeps) {}

  /** Answered calls grouped by one dimension, most expensive first (at most 1000 groups). */
  async usage(groupBy: UsageGroupBy, from: Date | null, to: Date | null) {
    if (from && to && from > to) throw BadInputError.field('from', 'must be before to');
    const rows = await this.deps.db.query<{
      key: string | null;
      requests: number;
      input: string;
      output: string;
      cost: string;
    }>(sql`
      SELECT ${raw(GROUPS[groupBy])} AS key, count(*)::int AS requests, sum(input_tokens)::bigint AS input,
             sum(output_tokens)::bigint AS output, sum(total_cost)::numeric(18,6)::text AS cost
        FROM cost_records
       WHERE ${and([from ? sql`created_at >= ${from}` : null, to ? sql`created_at < ${to}` : null])}
       GROUP BY 1 ORDER BY sum(total_cost) DESC, 1 LIMIT 1000`);
    return rows.map((r) => ({
      key: r.key,
      requests: r.requests,
      inputTokens: Number(r.input),
      outputTokens: Number(r.output),
      costUsd: formatMicros(toMicros(r.cost)),
    }));
  }

  /** Every AI call, newest first: a human admin may filter by user, anyone else sees their own. */
  promptLogs(viewer: Viewer, fields: Iterable<string>, where: PromptLogWhere, page: PageArgs) {
    const userId = isHumanAdmin(viewer) ? where.userId : viewer.userId;
    return paginate(
      this.deps.db,
      {
        model: readModel(PromptLog),
        fields,
        where: and([
          userId ? sql`t.user_id = ${userId}::uuid` : null,
          where.status?.length ? sql`t.status = ANY(${where.status}::prompt_status[])` : null,
          where.intent ? sql`t.intent = ${where.intent}` : null,
          where.taskId ? sql`t.task_id = ${where.taskId}::uuid` : null,
          where.conversationId ? sql`t.conversation_id = ${where.conversationId}::uuid` : null,
        ]),
        sort: { property: 'createdAt', direction: 'DESC', type: 'timestamptz' },
      },
      page,
    );
  }

  /** Cost alerts, newest first: a person's own, a human admin's everyone's. */
  costAlerts(viewer: Viewer, fields: Iterable<string>, unacknowledgedOnly: boolean, page: PageArgs) {
    return paginate(
      this.deps.db,
      {
        model: readModel(CostAlert),
        fields,
        where: and([
          isHumanAdmin(viewer) ? null : this.ownAlerts(viewer),
          unacknowledgedOnly ? sql`NOT t.acknowledged` : null,
        ]),
        sort: { property: 'id', direction: 'DESC', type: 'uuid' },
      },
      page,
    );
  }

  /** Marks an alert seen (audited once); another person's alert is NOT_FOUND unless a human admin asks. */
  acknowledgeCostAlert(scope: Scope, viewer: Viewer, id: string) {
    const alertId = requireUuid(id);
    return inTransaction(scope, async (tx) => {
      const alert = await tx.em.findOne(CostAlert, alertId);
      const mine =
        alert &&
        (isHumanAdmin(viewer) ||
          (await this.deps.db.one(
            sql`SELECT 1 FROM cost_alerts t WHERE t.id = ${alertId}::uuid AND ${this.ownAlerts(viewer)}`,
          )));
      if (!mine) throw new NotFoundError('CostAlert', alertId);
      if (!alert.acknowledged) {
        alert.acknowledged = true;
        alert.acknowledgedAt = new Date();
        this.deps.audit.record(tx, { action: 'costAlert.acknowledge', entityType: 'CostAlert', entityId: alert.id });
      }
      return alert;
    });
  }

  /** Sets a user's deviation score back to 0, audited with the score it had. */
  resetDeviationScore(scope: Scope, userId: string) {
    const id = requireUuid(userId, 'userId');
    return inTransaction(scope, async (tx) => {
      const user = await tx.em.findOne(User, id);
      if (!user) throw new NotFoundError('User', id);
      const before = user.deviationScore;
      user.deviationScore = '0';
      this.deps.audit.record(tx, {
        action: 'user.resetDeviationScore',
        entityType: 'User',
        entityId: id,
        before: { deviationScore: before },
        after: { deviationScore: '0' },
      });
      return user;
    });
  }

  /** Subscription filter: the user concerned and human admins hear of a cost alert. */
  /** A user's own alerts, and those of the projects they own or maintain (a row aliased `t`). */
  private ownAlerts(viewer: Viewer) {
    return sql`(t.user_id = ${viewer.userId}::uuid OR t.project_id IN (SELECT m.project_id FROM project_members m
               WHERE m.user_id = ${viewer.userId}::uuid AND m.role IN ('OWNER', 'MAINTAINER')))`;
  }

  hearsCostAlert = (viewer: Viewer, e: CostAlertTriggered) =>
    isHumanAdmin(viewer) || e.userId === viewer.userId || !!e.recipientIds?.includes(viewer.userId);
}
