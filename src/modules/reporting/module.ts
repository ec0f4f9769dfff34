import { defineModule, type ModuleDeps } from '../define-module.js';
import { exportRoutes } from './exports.routes.js';
import type { ReportingServices } from './index.js';
import { UsageReportResolver } from './usage-report.resolver.js';
import { UsageReportService } from './usage-report.service.js';

/** Usage and cost reports (usageReport, usageRecorded) and the CSV/JSONL exports. */
export const reportingModule = defineModule({
  name: 'reporting',
  entities: [],
  resolvers: [UsageReportResolver],
  create: (deps: ModuleDeps): ReportingServices => ({ usageReports: new UsageReportService(deps.db) }),
  /** The rollup's appended rows folded in every minute (a report sums both tables, so this is housekeeping, not freshness). */
  jobs: (services, { config }) => [
    {
      name: 'reporting.compactUsageRollup',
      intervalMs: 60_000,
      run: () => services.usageReports.compactRollup(config.PROMPT_LOG_RETENTION_MONTHS),
    },
  ],
  routes: (services) => exportRoutes(services.usageReports),
});
