import sql, { join, raw, type Sql } from 'sql-template-tag';
import type { SqlClient } from '../../db/sql.js';
import type { EventScope } from '../../events/subscription.js';
import { encodeCursor, type PageInfo } from '../../shared/connection.js';
import { BadInputError } from '../../shared/errors.js';
import { and } from '../../shared/read-model.js';
import type { Viewer } from '../../shared/scope.js';
import { formatMicros, toMicros } from '../billing/money.js';
import { Role } from '../identity/user.entity.js';
import type { UsageRecordedEvent } from './usage-report.events.js';
import { UsageDimension, type UsageReport, type UsageReportWhere, type UsageRow, type UsageTotals } from './usage-report.types.js';

/** Groups per page of `usageReport`: 100 by default, at most 1,000 (a year of days × a few models). */
export const DEFAULT_REPORT_PAGE = 100;
export const MAX_REPORT_PAGE = 1000;

interface Dimension {
  /** The group's expression over prompt_logs `p`. */
  expr: string;
  /** Its column in the report's rows (and the CSV's header). */
  column: string;
  /** Time dimensions sort oldest first, before the cost; the others after it. */
  time?: boolean;
}

const utc = `(p.created_at AT TIME ZONE 'UTC')`;
const DIMENSIONS: Record<UsageDimension, Dimension> = {
  [UsageDimension.DAY]: { expr: `${utc}::date`, column: 'day', time: true },
  [UsageDimension.WEEK]: { expr: `date_trunc('week', ${utc})::date`, column: 'week', time: true },
  [UsageDimension.MONTH]: { expr: `date_trunc('month', ${utc})::date`, column: 'month', time: true },
  [UsageDimension.USER]: { expr: 'p.user_id', column: 'user_id' },
  [UsageDimension.PROJECT]: { expr: 'p.project_id', column: 'project_id' },
  [UsageDimension.TASK]: { expr: 'p.task_id', column: 'task_id' },
  [UsageDimension.AGENT]: { expr: 'p.agent_type', column: 'agent_type' },
  [UsageDimension.MODEL]: { expr: 'p.model', column: 'model' },
  [UsageDimension.PROVIDER]: { expr: 'p.provider_id', column: 'provider_id' },
  [UsageDimension.INTENT]: { expr: 'p.intent', column: 'intent' },
  [UsageDimension.API_TOKEN]: { expr: 'p.api_token_id', column: 'api_token_id' },
  [UsageDimension.STATUS]: { expr: 'p.status::text', column: 'status' },
};

/** A CSV column per dimension; objects get their id and a readable name. */
const NAMES: Partial<Record<UsageDimension, { column: string; expr: string; join: string }>> = {
  [UsageDimension.USER]: { column: 'username', expr: 'nu.username', join: 'LEFT JOIN users nu ON nu.id = g.user_id' },
  [UsageDimension.PROJECT]: { column: 'project_name', expr: 'np.name', join: 'LEFT JOIN projects np ON np.id = g.project_id' },
  [UsageDimension.TASK]: { column: 'task_title', expr: 'nt.title', join: 'LEFT JOIN tasks nt ON nt.id = g.task_id' },
  [UsageDimension.PROVIDER]: { column: 'provider_name', expr: 'npr.name', join: 'LEFT JOIN providers npr ON npr.id = g.provider_id' },
  [UsageDimension.API_TOKEN]: { column: 'api_token_name', expr: 'na.name', join: 'LEFT JOIN api_tokens na ON na.id = g.api_token_id' },
};

const MEASURES = `count(*)::bigint AS requests,
  coalesce(sum(p.prompt_tokens) FILTER (WHERE p.status = 'SUCCESS'), 0)::bigint AS input_tokens,
  coalesce(sum(p.completion_tokens) FILTER (WHERE p.status = 'SUCCESS'), 0)::bigint AS output_tokens,
  coalesce(sum(p.cost_usd) FILTER (WHERE p.status = 'SUCCESS'), 0)::numeric(18,6)::text AS cost_usd,
  count(*) FILTER (WHERE p.status = 'BLOCKED')::bigint AS blocked,
  count(*) FILTER (WHERE p.status = 'ERROR')::bigint AS errors`;

export const USAGE_MEASURES = ['requests', 'input_tokens', 'output_tokens', 'cost_usd', 'blocked', 'errors'] as const;

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
 * scan (GROUPING SETS).
 */
export class UsageReportService {
  constructor(private readonly db: SqlClient) {}

  /**
   * The calls a viewer may count: admins all; a project's OWNER and MAINTAINERs the calls
   * made in that project; everyone their own calls.
   */
  visibleCalls(viewer: Viewer): Sql {
    if (viewer.role === Role.ADMIN && !viewer.serviceActor) return sql`TRUE`;
    return sql`(p.user_id = ${viewer.userId}::uuid OR p.project_id IN (
      SELECT vm.project_id FROM project_members vm WHERE vm.user_id = ${viewer.userId}::uuid AND vm.role IN ('OWNER', 'MAINTAINER')))`;
  }

  /** Whether a viewer may hear that calls were recorded: the same rule as visibleCalls, one query per event for all subscribers. */
  async hears(e: UsageRecordedEvent, viewer: Viewer, scope: EventScope): Promise<boolean> {
    if (viewer.role === Role.ADMIN && !viewer.serviceActor) return true;
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

  async report(viewer: Viewer, req: ReportRequest, page: { first?: number | null; after?: string | null }): Promise<UsageReport> {
    const dims = this.dimensions(req.groupBy);
    const first = page.first ?? DEFAULT_REPORT_PAGE;
    if (!Number.isInteger(first) || first < 0 || first > MAX_REPORT_PAGE) throw BadInputError.field('first', `must be between 0 and ${MAX_REPORT_PAGE}`);
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
    return { rows: pageRows, totals: total ? toTotals(total) : EMPTY_TOTALS, totalCount: total?.total_count ?? 0, pageInfo };
  }

  /**
   * Every group of a report as CSV-ready records (dimension columns, readable names, then
   * the measures), in report order: the statement and the header the usage export streams.
   */
  exportStatement(viewer: Viewer, req: ReportRequest): { statement: Sql; columns: string[] } {
    const dims = this.dimensions(req.groupBy);
    const columns: string[] = [];
    const select: string[] = [];
    const joins: string[] = [];
    for (const d of dims) {
      const def = DIMENSIONS[d];
      columns.push(def.column);
      select.push(`g.${def.column}`);
      const name = NAMES[d];
      if (name) {
        columns.push(name.column);
        // A token's name only to its owner and admins; its id is in the row either way.
        const expr = d === UsageDimension.API_TOKEN && !(viewer.role === Role.ADMIN && !viewer.serviceActor) ? `CASE WHEN na.user_id = '${viewer.userId}'::uuid THEN na.name END` : name.expr;
        select.push(`${expr} AS ${name.column}`);
        joins.push(name.join);
      }
    }
    columns.push(...USAGE_MEASURES);
    select.push(...USAGE_MEASURES.map((m) => `g.${m}`));
    const statement = sql`WITH g AS (${this.grouped(viewer, dims, req.where, false)})
      SELECT ${raw(select.join(', '))} FROM g ${raw(joins.join(' '))} ORDER BY ${orderOf(dims)}`;
    return { statement, columns };
  }

  private dimensions(groupBy: readonly UsageDimension[]): UsageDimension[] {
    if (!groupBy.length) throw BadInputError.field('groupBy', 'needs at least one dimension');
    if (new Set(groupBy).size !== groupBy.length) throw BadInputError.field('groupBy', 'names a dimension twice');
    for (const d of groupBy) if (!DIMENSIONS[d]) throw BadInputError.field('groupBy', `has no dimension ${String(d)}`);
    return [...groupBy];
  }

  /** The groups (and, with `withTotal`, the grand total as the row whose is_total ≠ 0), over the visible calls only. */
  private grouped(viewer: Viewer, dims: UsageDimension[], where: UsageReportWhere | null | undefined, withTotal = true): Sql {
    const w = where ?? {};
    if (w.from && w.to && w.from > w.to) throw BadInputError.field('from', 'must be before to');
    const exprs = dims.map((d) => DIMENSIONS[d].expr);
    // Dates as their text (YYYY-MM-DD sorts as it reads): the driver would make local-time Dates of them.
    const keys = raw(dims.map((d) => (DIMENSIONS[d].time ? `to_char(${DIMENSIONS[d].expr}, 'YYYY-MM-DD')` : DIMENSIONS[d].expr) + ` AS ${DIMENSIONS[d].column}`).join(', '));
    const filter = and([
      this.visibleCalls(viewer),
      w.from ? sql`p.created_at >= ${w.from}` : null,
      w.to ? sql`p.created_at < ${w.to}` : null,
      w.userId ? sql`p.user_id = ${w.userId}::uuid` : null,
      w.projectId ? sql`p.project_id = ${w.projectId}::uuid` : null,
      w.taskId ? sql`p.task_id = ${w.taskId}::uuid` : null,
      w.model ? sql`p.model = ${w.model}` : null,
      w.providerId ? sql`p.provider_id = ${w.providerId}::uuid` : null,
      w.apiTokenId ? sql`p.api_token_id = ${w.apiTokenId}::uuid` : null,
    ]);
    if (!withTotal) return sql`SELECT ${keys}, ${raw(MEASURES)} FROM prompt_logs p WHERE ${filter} GROUP BY ${raw(exprs.join(', '))}`;
    return sql`SELECT ${keys}, ${raw(MEASURES)}, GROUPING(${raw(exprs.join(', '))}) AS is_total
      FROM prompt_logs p WHERE ${filter} GROUP BY GROUPING SETS ((${raw(exprs.join(', '))}), ())`;
  }
}

/** Time dimensions oldest first, then the most expensive groups, then every key (a total order, so pages never overlap). */
function orderOf(dims: UsageDimension[]): Sql {
  const time = dims.filter((d) => DIMENSIONS[d].time).map((d) => `g.${DIMENSIONS[d].column}`);
  const rest = dims.filter((d) => !DIMENSIONS[d].time).map((d) => `g.${DIMENSIONS[d].column} NULLS LAST`);
  return join([...time, 'g.cost_usd::numeric DESC', 'g.requests DESC', ...rest].map((s) => raw(s)), ', ');
}

/** A report's cursor is the number of groups before it (a report is computed whole anyway, so an offset costs nothing more). */
function offsetOf(cursor: string): number {
  let offset: unknown;
  try {
    [offset] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
  } catch {
    /* below */
  }
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) throw BadInputError.field('after', 'is not a cursor of this report');
  return offset;
}

const EMPTY_TOTALS: UsageTotals = { requests: 0, inputTokens: 0, outputTokens: 0, costUsd: '0.000000', blocked: 0, errors: 0 };

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
