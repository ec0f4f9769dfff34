import type { IncomingMessage, ServerResponse } from 'node:http';
import { stringify } from 'csv-stringify/sync';
import sql, { raw } from 'sql-template-tag';

import type { Route, RouteContext } from '../../server/http.js';
import { BadInputError, ForbiddenError, isUuid, UnauthenticatedError } from '../../shared/errors.js';
import { and, readModel, selectList } from '../../shared/read-model.js';
import type { Viewer } from '../../shared/scope.js';
import { isHumanAdmin } from '../../shared/viewer.js';
import { PromptLog } from '../ai/prompt-log.entity.js';
import { CONTENT } from '../audit/index.js';
import { streamRows, writeChunk } from './row-stream.js';
import type { UsageReportService } from './usage-report.service.js';
import { UsageDimension, type UsageReportWhere } from './usage-report.types.js';

/** The caller from `Authorization: Bearer …`: 401 without one, 403 for service tokens (exports are people's). */
async function signedIn(res: ServerResponse, ctx: RouteContext): Promise<Viewer> {
  res.setHeader('www-authenticate', 'Bearer');
  const viewer = await ctx.authenticate();
  if (!viewer) throw new UnauthenticatedError('Send Authorization: Bearer <access or API token>');
  res.removeHeader('www-authenticate');
  if (viewer.serviceActor) throw new ForbiddenError('Service tokens cannot export');
  return viewer;
}

function dateParam(q: URLSearchParams, name: string): Date | null {
  const v = q.get(name);
  if (v === null || v === '') return null;
  const d = new Date(v);
  if (!/^\d{4}-\d{2}-\d{2}/.test(v) || Number.isNaN(d.getTime()))
    throw BadInputError.field(name, 'must be an ISO 8601 date or date-time');
  return d;
}

function uuidParam(q: URLSearchParams, name: string): string | null {
  const v = q.get(name);
  if (v === null || v === '') return null;
  if (!isUuid(v)) throw BadInputError.field(name, 'must be a UUID');
  return v.toLowerCase();
}

const query = (req: IncomingMessage) => new URL(req.url ?? '/', 'http://localhost').searchParams;

function range(q: URLSearchParams): { from: Date | null; to: Date | null } {
  const from = dateParam(q, 'from');
  const to = dateParam(q, 'to');
  if (from && to && from > to) throw BadInputError.field('from', 'must be before to');
  return { from, to };
}

/** Starts a streamed download; rows are written as they are fetched. */
function startDownload(res: ServerResponse, type: string, filename: string) {
  res.writeHead(200, {
    'content-type': type,
    'content-disposition': `attachment; filename="${filename}"`,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
}

/** RFC 4180 quoting, and cells a spreadsheet would run as a formula (a task titled "=HYPERLINK(…)") quoted with a leading '. */
const CSV = { escape_formulas: true, record_delimiter: 'windows' } as const;

const jsonLines = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

/**
 * GET /exports/usage.csv, /exports/prompt-logs.jsonl and /exports/audit.jsonl: the usage
 * report, the prompt logs and the audit trail as downloads for spreadsheets, data
 * warehouses and SIEMs, streamed from a server-side cursor. Same visibility as the
 * GraphQL queries they mirror (usageReport, promptLogs, auditEvents).
 */
export function exportRoutes(reports: UsageReportService): Route[] {
  return [usageCsvRoute(reports), promptLogsRoute(), auditRoute()];
}

/** The usage report as CSV, grouped and filtered as the usageReport query. */
function usageCsvRoute(reports: UsageReportService): Route {
  return {
    method: 'GET',
    path: /^\/exports\/usage\.csv$/,
    async handler(req, res, ctx) {
      const viewer = await signedIn(res, ctx);
      const q = query(req);
      const groupBy = (q.get('groupBy') ?? '')
        .split(',')
        .map((s) => s.trim().toUpperCase())
        .filter(Boolean);
      const unknown = groupBy.filter((d) => !(d in UsageDimension));
      if (unknown.length)
        throw BadInputError.field(
          'groupBy',
          `has no dimension ${unknown.join(', ')} (there are ${Object.keys(UsageDimension).join(', ')})`,
        );
      const where: UsageReportWhere = {
        ...range(q),
        userId: uuidParam(q, 'userId'),
        projectId: uuidParam(q, 'projectId'),
        taskId: uuidParam(q, 'taskId'),
        model: q.get('model') || null,
        providerId: uuidParam(q, 'providerId'),
        apiTokenId: uuidParam(q, 'apiTokenId'),
      };
      const { statement, columns } = reports.exportStatement(viewer, { groupBy: groupBy as UsageDimension[], where });
      // RFC 4180 text/csv, with the header row announced (header=present).
      startDownload(res, 'text/csv; charset=utf-8; header=present', 'usage.csv');
      await writeChunk(res, stringify([columns], CSV));
      await streamRows<Record<string, unknown>>(
        ctx.runtime.db.pool,
        statement,
        (rows) => writeChunk(res, stringify(rows, { ...CSV, columns })),
        () => res.destroyed,
      );
      res.end();
    },
  };
}

/** The prompt logs as JSON lines: an admin's of everyone (or of one user), everyone else's own. */
function promptLogsRoute(): Route {
  return {
    method: 'GET',
    path: /^\/exports\/prompt-logs\.jsonl$/,
    async handler(req, res, ctx) {
      const viewer = await signedIn(res, ctx);
      const q = query(req);
      const { from, to } = range(q);
      const asked = uuidParam(q, 'userId');
      // As promptLogs: admins everyone's (or one user's), everyone else their own.
      const userId = isHumanAdmin(viewer) ? asked : viewer.userId;
      const model = readModel(PromptLog);
      const statement = sql`SELECT ${selectList(model, model.columns.keys(), 't')} FROM prompt_logs t
        WHERE ${and([userId ? sql`t.user_id = ${userId}::uuid` : null, from ? sql`t.created_at >= ${from}` : null, to ? sql`t.created_at < ${to}` : null])}
        ORDER BY t.created_at, t.id`;
      startDownload(res, 'application/x-ndjson; charset=utf-8', 'prompt-logs.jsonl');
      // `user` is the user's id on the read model; named as the other references are.
      const line = ({ user, ...rest }: Record<string, unknown>) => ({ ...rest, userId: user });
      await streamRows<Record<string, unknown>>(
        ctx.runtime.db.pool,
        statement,
        (rows) => writeChunk(res, jsonLines(rows.map(line))),
        () => res.destroyed,
      );
      res.end();
    },
  };
}

/** The audit trail as JSON lines, administrators only, each line verifiable against its hash. */
function auditRoute(): Route {
  return {
    method: 'GET',
    path: /^\/exports\/audit\.jsonl$/,
    async handler(req, res, ctx) {
      const viewer = await signedIn(res, ctx);
      if (!isHumanAdmin(viewer)) throw new ForbiddenError('Only administrators export the audit trail');
      const { from, to } = range(query(req));
      // Each event as its hash covers it (the same text of every field), with seq, prevHash
      // and hash: sha256 of the RFC 8785 canonical JSON of the event without `hash` and
      // `sealedAt` recomputes `hash`, and each prevHash is the hash before it.
      const statement = sql`SELECT ${raw(CONTENT)}, e.seq, e.prev_hash AS "prevHash", e.hash,
          to_char(e.sealed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS "sealedAt"
        FROM audit_events e
        WHERE ${and([from ? sql`e.created_at >= ${from}` : null, to ? sql`e.created_at < ${to}` : null])}
        ORDER BY e.seq NULLS LAST, e.created_at, e.id`;
      startDownload(res, 'application/x-ndjson; charset=utf-8', 'audit.jsonl');
      await streamRows<Record<string, unknown>>(
        ctx.runtime.db.pool,
        statement,
        (rows) => writeChunk(res, jsonLines(rows.map((r) => ({ ...r, seq: r.seq == null ? null : Number(r.seq) })))),
        () => res.destroyed,
      );
      res.end();
    },
  };
}
