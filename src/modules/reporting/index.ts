import type { UsageReportService } from './usage-report.service.js';

/**
 * The reporting module's surface. It has no entities of its own: it reads the prompt logs,
 * the usage rollup PostgreSQL keeps beside them, and the audit trail.
 */
export interface ReportingServices {
  /** Usage and cost reports (usageReport, usageRecorded) and the CSV/JSONL exports. */
  usageReports: UsageReportService;
}
