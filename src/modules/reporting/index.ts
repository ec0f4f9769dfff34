import type { SqlClient } from '../../db/sql.js';
import type { Route } from '../../server/http.js';
import { exportRoutes } from './exports.routes.js';
import { UsageReportResolver } from './usage-report.resolver.js';
import { UsageReportService } from './usage-report.service.js';

/** Usage and cost reports (usageReport, usageRecorded) and the CSV/JSONL exports. No entities of its own: it reads the prompt logs and the audit trail. */
export const reportingResolvers = [UsageReportResolver] as const;

export function createReporting(d: { db: SqlClient }) {
  return { usageReports: new UsageReportService(d.db) };
}

export function reportingRoutes(s: ReturnType<typeof createReporting>): Route[] {
  return exportRoutes(s.usageReports);
}
