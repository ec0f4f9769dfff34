import sql, { join, raw, type Sql } from 'sql-template-tag';

import type { SqlClient } from '../../db/sql.js';
import type { EventScope } from '../../events/subscription.js';
import { encodeCursor, type PageInfo } from '../../shared/connection.js';
import { BadInputError } from '../../shared/errors.js';
import { and } from '../../shared/read-model.js';
import type { Viewer } from '../../shared/scope.js';
import { isHumanAdmin } from '../../shared/viewer.js';
import { formatMicros, toMicros } from '../billing/index.js';
import type { UsageRecordedEvent } from './usage-report.events.js';
import {
  UsageDimension,
  type UsageReport,
  type UsageReportWhere,
  type UsageRow,
  type UsageTotals,
} from './usage-report.types.js';

/** Groups per page of `usageReport`: 100 by default, at most 1,000 (a year of days × a few models). */
export const DEFAULT_REPORT_PAGE = 100;
export const MAX_REPORT_PAGE = 1000;

interface Dimension {
  /** The group's expression over the report's source `p` (see `sourceColumns`). */
  expr: string;
  /** Its column in the report's rows (and the CSV's header). */
  column: string;
  /** Time dimensions sort oldest first, before the cost; the others after it. */
  time?: boolean;
  /** Kept in the organisation's daily rollup (usage_rollup): an admin's report by these alone reads it, not the logs. */
  rolledUp?: boolean;
}

const DIMENSIONS: Record<UsageDimension, Dimension> = {
  [UsageDimension.DAY]: { expr: 'p.day', column: 'day', time: true, rolledUp: true },
  [UsageDimension.WEEK]: {
    expr: `date_trunc('week', p.day::timestamp)::date`,
    column: 'week',
    time: true,
    rolledUp: true,
  },
  [UsageDimension.MONTH]: {
    expr: `date_trunc('month', p.day::timestamp)::date`,
    column: 'month',
    time: true,
    rolledUp: true,
  },
  [UsageDimension.USER]: { expr: 'p.user_id', column: 'user_id' },
  [UsageDimension.PROJECT]: { expr: 'p.project_id', column: 'project_id' },
  [UsageDimension.TASK]: { expr: 'p.task_id', column: 'task_id' },
  [UsageDimension.AGENT]: { expr: 'p.agent_type', column: 'agent_type', rolledUp: true },
  [UsageDimension.MODEL]: { expr: 'p.model', column: 'model', rolledUp: true },
  [UsageDimension.PROVIDER]: { expr: 'p.provider_id', column: 'provider_id', rolledUp: true },
  [UsageDimension.INTENT]: { expr: 'p.intent', column: 'intent' },
  [UsageDimension.API_TOKEN]: { expr: 'p.api_token_id', column: 'api_token_id' },
  [UsageDimension.STATUS]: { expr: 'p.status::text', column: 'status', rolledUp: true },
};

/** A CSV column per dimension; objects get their id and a readable name. */
const NAMES: Partial<Record<UsageDimension, { column: string; expr: string; join: string }>> = {
  [UsageDimension.USER]: { column: 'username', expr: 'nu.username', join: 'LEFT JOIN users nu ON nu.id = g.user_id' },
  [UsageDimension.PROJECT]: {
    column: 'project_name',
    expr: 'np.name',
    join: 'LEFT JOIN projects np ON np.id = g.project_id',
  },
  [UsageDimension.TASK]: { column: 'task_title', expr: 'nt.title', join: 'LEFT JOIN tasks nt ON nt.id = g.task_id' },
  [UsageDimension.PROVIDER]: {
    column: 'provider_name',
    expr: 'npr.name',
    join: 'LEFT JOIN providers npr ON npr.id = g.provider_id',
  },
  [UsageDimension.API_TOKEN]: {
    column: 'api_token_name',
    expr: 'na.name',
    join: 'LEFT JOIN api_tokens na ON na.id = g.api_token_id',
  },
};

/** Tokens and cost of answered calls only: blocked and failed calls are counted, never charged. */
const MEASURES = `sum(p.requests)::bigint AS requests,
  coalesce(sum(p.input_tokens) FILTER (WHERE p.status = 'SUCCESS'), 0)::bigint AS input_tokens,
  coalesce(sum(p.output_tokens) FILTER (WHERE p.status = 'SUCCESS'), 0)::bigint AS output_tokens,
  coalesce(sum(p.cost_usd) FILTER (WHERE p.status = 'SUCCESS'), 0)::numeric(18,6)::text AS cost_usd,
  coalesce(sum(p.requests) FILTER (WHERE p.status = 'BLOCKED'), 0)::bigint AS blocked,
  coalesce(sum(p.requests) FILTER (WHERE p.status = 'ERROR'), 0)::bigint AS errors`;

export const USAGE_MEASURES = ['requests', 'input_tokens', 'output_tokens', 'cost_usd', 'blocked', 'errors'] as const;

/** The source's columns, from the prompt logs `l` (one row per call). */
const FROM_LOGS = `(l.created_at AT TIME ZONE 'UTC')::date AS day, l.user_id, l.project_id, l.task_id, l.agent_type, l.model, l.provider_id,
  l.intent, l.api_token_id, l.status, 1 AS requests, l.prompt_tokens AS input_tokens, l.completion_tokens AS output_tokens, l.cost_usd`;
/** The same columns from a rollup table `r` (one row per day, model, provider, agent type and status). */
const FROM_ROLLUP = `r.day, NULL::uuid AS user_id, NULL::uuid AS project_id, NULL::uuid AS task_id, r.agent_type, r.model, r.provider_id,
  NULL::text AS intent, NULL::uuid AS api_token_id, r.status, r.requests, r.input_tokens, r.output_tokens, r.cost_usd`;

const DAY_MS = 86400_000;
const dayStart = (d: Date) => new Date(Math.floor(d.getTime() / DAY_MS) * DAY_MS);

type Raw = Record<string, string | number | null>;

export interface ReportRequest {
  groupBy: readonly UsageDimension[];
  where?: UsageReportWhere | null;
}

/**
 * Usage and cost reports over the prompt logs (every call, answered, blocked or failed,
 * each with its user, project, task, agent, model, provider, intent, token and cost).
 * Who sees which calls is part of the query's WHERE (`visibleCalls`), never a filter on
 * rows already read. One statement per report: the groups and the totals come from one
 * scan (GROUPING SETS). Reports over the whole organisation by time, model, provider,
 * agent and status read the daily rollup PostgreSQL keeps as calls are recorded
 * (see `source`): a month of a million calls is a few hundred rows there.
 */
export class UsageReportService {
  constructor(private readonly db: SqlClient) {}

  /**
   * The calls a viewer may count: admins all; a project's OWNER and MAINTAINERs the calls
   * made in that project; everyone their own calls.
   */
  visibleCalls(viewer: Viewer, alias: string): Sql {
    if (isHumanAdmin(viewer)) return sql`TRUE`;
    const l = raw(alias);
    return sql`(${l}.user_id = ${viewer.userId}::uuid OR ${l}.project_id IN (
      SELECT vm.project_id FROM project_members vm WHERE vm.user_id = ${viewer.userId}::uuid AND vm.role IN ('OWNER', 'MAINTAINER')))`;
  }

  /** Whether a viewer may hear that calls were recorded: the same rule as visibleCalls, one query per event for all subscribers. */
  async hears(e: UsageRecordedEvent, viewer: Viewer, scope: EventScope): Promise<boolean> {
    if (isHumanAdmin(viewer)) return true;
    if (!e.userIds) return false;
    if (e.userIds.includes(viewer.userId)) return true;
    if (!e.projectIds.length) return false;
    const managers = await scope.once('usage.recorded:managers', async () => {
      const rows = await this.db.query<{ user_id: string }>(
        sql`SELECT DISTINCT user_id FROM project_members WHERE project_id = ANY(${e.projectIds}::uuid[]) AND role IN ('OWNER', 'MAINTAINER')`,
      );
      return new Set(rows.map((r) => r.user_id));
    });
    return managers.has(viewer.userId);
  }

  async report(
    viewer: Viewer,
    req: ReportRequest,
    page: { first?: number | null; after?: string | null },
  ): Promise<UsageReport> {
    const dims = this.dimensions(req.groupBy);
    const first = page.first ?? DEFAULT_REPORT_PAGE;
    if (!Number.isInteger(first) || first < 0 || first > MAX_REPORT_PAGE)
      throw BadInputError.field('first', `must be between 0 and ${MAX_REPORT_PAGE}`);
    const offset = page.after ? offsetOf(page.after) : 0;
    const groups = this.grouped(viewer, dims, req.where);
    const rows = await this.db.query<Raw & { is_total: number; total_count: number }>(sql`
      WITH g AS (${groups})
      (SELECT g.*, (SELECT count(*) FROM g WHERE g.is_total = 0)::int AS total_count FROM g WHERE g.is_total <> 0)
      UNION ALL
      (SELECT g.*, NULL FROM g WHERE g.is_total = 0 ORDER BY ${orderOf(dims)} OFFSET ${offset} LIMIT ${first + 1})`);
    const total = rows.find((r) => r.is_total !== 0);
    const groupRows = rows.filter((r) => r.is_total === 0);
    const hasNextPage = groupRows.length > first;
    const pageRows = groupRows.slice(0, first).map(toRow);
    const pageInfo: PageInfo = {
      hasNextPage,
      hasPreviousPage: offset > 0,
      startCursor: pageRows.length ? encodeCursor([offset]) : null,
      endCursor: pageRows.length ? encodeCursor([offset + pageRows.length]) : null,
    };
    return {
      rows: pageRows,
      totals: total ? toTotals(total) : EMPTY_TOTALS,
      totalCount: total?.total_count ?? 0,
      pageInfo,
    };
  }

  /**
   * Every group of a report as CSV-ready records (dimension columns, readable names, then
   * the measures), in report order: the statement and the header the usage export streams.
   */
  exportStatement(viewer: Viewer, req: ReportRequest): { statement: Sql; columns: string[] } {
    const dims = this.dimensions(req.groupBy);
    const columns: string[] = [];
    const select: Sql[] = [];
    const joins: string[] = [];
    const admin = isHumanAdmin(viewer);
    for (const d of dims) {
      const def = DIMENSIONS[d];
      columns.push(def.column);
      select.push(raw(`g.${def.column}`));
      const name = NAMES[d];
      if (name) {
        columns.push(name.column);
        // A token's name only to its owner and admins; its id is in the row either way.
        select.push(
          d === UsageDimension.API_TOKEN && !admin
            ? sql`CASE WHEN na.user_id = ${viewer.userId}::uuid THEN na.name END AS api_token_name`
            : raw(`${name.expr} AS ${name.column}`),
        );
        joins.push(name.join);
      }
    }
    columns.push(...USAGE_MEASURES);
    select.push(...USAGE_MEASURES.map((m) => raw(`g.${m}`)));
    const statement = sql`WITH g AS (${this.grouped(viewer, dims, req.where, false)})
      SELECT ${join(select, ', ')} FROM g ${raw(joins.join(' '))} ORDER BY ${orderOf(dims)}`;
    return { statement, columns };
  }

  private dimensions(groupBy: readonly UsageDimension[]): UsageDimension[] {
    if (!groupBy.length) throw BadInputError.field('groupBy', 'needs at least one dimension');
    if (new Set(groupBy).size !== groupBy.length) throw BadInputError.field('groupBy', 'names a dimension twice');
    for (const d of groupBy) if (!DIMENSIONS[d]) throw BadInputError.field('groupBy', `has no dimension ${String(d)}`);
    return [...groupBy];
  }

  /** The groups (and, with `withTotal`, the grand total as the row whose is_total ≠ 0), over the visible calls only. */
  private grouped(
    viewer: Viewer,
    dims: UsageDimension[],
    where: UsageReportWhere | null | undefined,
    withTotal = true,
  ): Sql {
    const w = where ?? {};
    if (w.from && w.to && w.from > w.to) throw BadInputError.field('from', 'must be before to');
    const exprs = raw(dims.map((d) => DIMENSIONS[d].expr).join(', '));
    // Dates as their text (YYYY-MM-DD sorts as it reads): the driver would make local-time Dates of them.
    const keys = raw(
      dims
        .map(
          (d) =>
            (DIMENSIONS[d].time ? `to_char(${DIMENSIONS[d].expr}, 'YYYY-MM-DD')` : DIMENSIONS[d].expr) +
            ` AS ${DIMENSIONS[d].column}`,
        )
        .join(', '),
    );
    const source = this.source(viewer, dims, w);
    if (!withTotal) return sql`SELECT ${keys}, ${raw(MEASURES)} FROM (${source}) p GROUP BY ${exprs}`;
    return sql`SELECT ${keys}, ${raw(MEASURES)}, GROUPING(${exprs}) AS is_total FROM (${source}) p GROUP BY GROUPING SETS ((${exprs}), ())`;
  }

  /**
   * The calls to count, one row per call (the prompt logs) or per day and key (the rollup).
   * The rollup serves an admin's report over the whole organisation by day, week, month,
   * model, provider, agent type and status: it holds whole UTC days, so the partial days
   * at either end of the range come from the logs. Anything else (people, projects, tasks,
   * intents, tokens, or a viewer who sees only some calls) is counted from the logs, where
   * the viewer's visibility and the filters narrow the rows through their indexes.
   */
  private source(viewer: Viewer, dims: UsageDimension[], w: UsageReportWhere): Sql {
    const logFilters = (range: Sql[]) =>
      and([
        this.visibleCalls(viewer, 'l'),
        ...range,
        w.userId ? sql`l.user_id = ${w.userId}::uuid` : null,
        w.projectId ? sql`l.project_id = ${w.projectId}::uuid` : null,
        w.taskId ? sql`l.task_id = ${w.taskId}::uuid` : null,
        w.model ? sql`l.model = ${w.model}` : null,
        w.providerId ? sql`l.provider_id = ${w.providerId}::uuid` : null,
        w.apiTokenId ? sql`l.api_token_id = ${w.apiTokenId}::uuid` : null,
      ]);
    const logs = (range: Sql[]) => sql`SELECT ${raw(FROM_LOGS)} FROM prompt_logs l WHERE ${logFilters(range)}`;
    const since = (at: Date | null | undefined) => (at ? sql`l.created_at >= ${at}` : null);
    const before = (at: Date | null | undefined) => (at ? sql`l.created_at < ${at}` : null);
    const all = () => logs([since(w.from), before(w.to)].filter((c): c is Sql => !!c));

    const wholeOrganisation = isHumanAdmin(viewer) && !w.userId && !w.projectId && !w.taskId && !w.apiTokenId;
    if (!wholeOrganisation || !dims.every((d) => DIMENSIONS[d].rolledUp)) return all();
    // Whole days [firstDay, endDay) from the rollup; [from, firstDay) and [endDay, to) from the logs.
    const firstDay = w.from
      ? dayStart(w.from).getTime() === w.from.getTime()
        ? w.from
        : new Date(dayStart(w.from).getTime() + DAY_MS)
      : null;
    const endDay = w.to ? dayStart(w.to) : null;
    if (firstDay && endDay && firstDay >= endDay) return all();
    const rollupFilters = and([
      firstDay ? sql`r.day >= ${firstDay.toISOString().slice(0, 10)}::date` : null,
      endDay ? sql`r.day < ${endDay.toISOString().slice(0, 10)}::date` : null,
      w.model ? sql`r.model = ${w.model}` : null,
      w.providerId ? sql`r.provider_id = ${w.providerId}::uuid` : null,
    ]);
    const parts = [
      sql`SELECT ${raw(FROM_ROLLUP)} FROM usage_rollup r WHERE ${rollupFilters}`,
      sql`SELECT ${raw(FROM_ROLLUP)} FROM usage_rollup_delta r WHERE ${rollupFilters}`,
    ];
    if (w.from && firstDay && firstDay > w.from)
      parts.push(logs([sql`l.created_at >= ${w.from}`, sql`l.created_at < ${firstDay}`]));
    if (w.to && endDay && w.to > endDay)
      parts.push(logs([sql`l.created_at >= ${endDay}`, sql`l.created_at < ${w.to}`]));
    return join(parts, ' UNION ALL ');
  }

  /**
   * Folds the calls recorded since the last run into the rollup (one statement: rows
   * recorded meanwhile stay for the next run), and forgets days whose prompt logs are past
   * their retention, so the rollup and the logs always count the same calls.
   */
  async compactRollup(retentionMonths: number): Promise<{ folded: number }> {
    const [r] = await this.db.query<{ folded: number }>(sql`
      WITH moved AS (DELETE FROM usage_rollup_delta RETURNING *),
      folded AS (
        INSERT INTO usage_rollup AS u (day, model, provider_id, agent_type, status, requests, input_tokens, output_tokens, cost_usd)
        SELECT day, model, provider_id, agent_type, status, sum(requests), sum(input_tokens), sum(output_tokens), sum(cost_usd) FROM moved GROUP BY 1, 2, 3, 4, 5
        ON CONFLICT (day, model, provider_id, agent_type, status) DO UPDATE SET requests = u.requests + EXCLUDED.requests,
          input_tokens = u.input_tokens + EXCLUDED.input_tokens, output_tokens = u.output_tokens + EXCLUDED.output_tokens, cost_usd = u.cost_usd + EXCLUDED.cost_usd
        RETURNING 1)
      SELECT (SELECT count(*) FROM moved)::int AS folded`);
    await this.db.query(
      sql`DELETE FROM usage_rollup WHERE day < date_trunc('month', (now() AT TIME ZONE 'UTC') - make_interval(months => ${retentionMonths}))::date`,
    );
    return { folded: r?.folded ?? 0 };
  }
}

/** Time dimensions oldest first, then the most expensive groups, then every key (a total order, so pages never overlap). */
function orderOf(dims: UsageDimension[]): Sql {
  const time = dims.filter((d) => DIMENSIONS[d].time).map((d) => `g.${DIMENSIONS[d].column}`);
  const rest = dims.filter((d) => !DIMENSIONS[d].time).map((d) => `g.${DIMENSIONS[d].column} NULLS LAST`);
  return join(
    [...time, 'g.cost_usd::numeric DESC', 'g.requests DESC', ...rest].map((s) => raw(s)),
    ', ',
  );
}

/** A report's cursor is the number of groups before it (a report is computed whole anyway, so an offset costs nothing more). */
function offsetOf(cursor: string): number {
  let offset: unknown;
  try {
    [offset] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
  } catch {
    /* below */
  }
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0)
    throw BadInputError.field('after', 'is not a cursor of this report');
  return offset;
}

const EMPTY_TOTALS: UsageTotals = {
  requests: 0,
  inputTokens: 0,
  outputTokens: 0,
  costUsd: '0.000000',
  blocked: 0,
  errors: 0,
};

function toTotals(r: Raw): UsageTotals {
  return {
    requests: Number(r.requests),
    inputTokens: Number(r.input_tokens),
    outputTokens: Number(r.output_tokens),
    costUsd: formatMicros(toMicros(String(r.cost_usd))),
    blocked: Number(r.blocked),
    errors: Number(r.errors),
  };
}

const text = (v: unknown): string | null => (v == null ? null : String(v));

function toRow(r: Raw): UsageRow {
  return {
    ...toTotals(r),
    day: text(r.day),
    week: text(r.week),
    month: text(r.month),
    agentType: text(r.agent_type),
    model: text(r.model),
    intent: text(r.intent),
    status: text(r.status),
    userId: text(r.user_id),
    projectId: text(r.project_id),
    taskId: text(r.task_id),
    providerId: text(r.provider_id),
    apiTokenId: text(r.api_token_id),
  };
}
