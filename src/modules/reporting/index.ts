import type { Config } from '../../config.js';
import type { SqlClient } from '../../db/sql.js';
import type { JobDefinition } from '../../jobs/scheduler.js';
import type { Route } from '../../server/http.js';
import { exportRoutes } from './exports.routes.js';
import { UsageReportResolver } from './usage-report.resolver.js';
import { UsageReportService } from './usage-report.service.js';

/** Usage and cost reports (usageReport, usageRecorded) and the CSV/JSONL exports. No entities of its own: it reads the prompt logs, the usage rollup PostgreSQL keeps beside them, and the audit trail. */
export const reportingResolvers = [UsageReportResolver] as const;

export function createReporting(d: { db: SqlClient }) {
  return { usageReports: new UsageReportService(d.db) };
}

export function reportingRoutes(s: ReturnType<typeof createReporting>): Route[] {
  return exportRoutes(s.usageReports);
}

/** The rollup's appended rows folded in every minute (a report sums both tables, so this is housekeeping, not freshness). */
export function reportingJobs(s: ReturnType<typeof createReporting>, config: Config): JobDefinition[] {
  return [{ name: 'reporting.compactUsageRollup', intervalMs: 60_000, run: () => s.usageReports.compactRollup(config.PROMPT_LOG_RETENTION_MONTHS) }];
}
