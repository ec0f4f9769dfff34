import sql from 'sql-template-tag';
import type { SqlClient } from '../../db/sql.js';
import type { JobDefinition } from '../../jobs/scheduler.js';
import type { Logger } from '../../shared/logger.js';
import { AuditChainHead } from './audit-chain-head.entity.js';
import { AuditEvent } from './audit-event.entity.js';
import { AuditResolver } from './audit.resolver.js';
import { AuditService } from './audit.service.js';
import { SystemLog } from './system-log.entity.js';
import { SystemLogService, type CaptureLevel } from './system-log.service.js';

export const auditEntities = [AuditEvent, AuditChainHead, SystemLog];
export const auditResolvers = [AuditResolver] as const;

export interface AuditModuleDeps {
  db: SqlClient;
  logger: Logger;
  config: {
    AUDIT_SEAL_DELAY_MS: number;
    AUDIT_SEAL_INTERVAL_MS: number;
    AUDIT_PARTITIONS_AHEAD: number;
    AUDIT_CHECKPOINT_KEY_FILE: string;
    AUDIT_CHECKPOINT_FILE: string;
    AUDIT_CHECKPOINT_INTERVAL_MS: number;
    SYSTEM_LOG_LEVEL: CaptureLevel;
    SYSTEM_LOG_RETENTION_DAYS: number;
  };
}

/** The audit trail and the system logs; starts keeping the logger's warnings and errors. */
export function createAudit(d: AuditModuleDeps) {
  const audit = new AuditService(d);
  const systemLogs = new SystemLogService(d.db, { level: d.config.SYSTEM_LOG_LEVEL });
  systemLogs.capture(d.logger);
  return { audit, systemLogs };
}

export type AuditServices = ReturnType<typeof createAudit>;

/**
 * - audit.seal: links events no commit hook announced (written outside a transaction,
 *   by another program, or committed by an instance that stopped before sealing);
 * - audit.checkpoint: signs the chain's head into the checkpoint file (./audit-checkpoints.ts);
 * - audit.partitions: keeps AUDIT_PARTITIONS_AHEAD monthly partitions ready;
 * - audit.systemLogRetention: deletes system logs past SYSTEM_LOG_RETENTION_DAYS.
 */
export function auditJobs(s: AuditServices, d: AuditModuleDeps): JobDefinition[] {
  return [
    { name: 'audit.seal', intervalMs: d.config.AUDIT_SEAL_INTERVAL_MS, run: () => s.audit.chain.seal() },
    { name: 'audit.checkpoint', intervalMs: d.config.AUDIT_CHECKPOINT_INTERVAL_MS, run: async () => ({ signedSeq: await s.audit.checkpoint() }) },
    {
      name: 'audit.partitions',
      intervalMs: 3600_000,
      async run({ db, logger }) {
        const made = await db.one<{ n: number }>(sql`SELECT steward_audit_ensure_partitions(now(), ${d.config.AUDIT_PARTITIONS_AHEAD}::int) AS n`);
        const stray = await db.one<{ n: number }>(sql`SELECT count(*)::int AS n FROM audit_events_default`);
        if (stray?.n) logger.warn({ module: 'audit', events: stray.n }, 'audit events sit in the default partition: a monthly partition was missing when they were written');
        return { created: made?.n ?? 0 };
      },
    },
    { name: 'audit.systemLogRetention', intervalMs: 3600_000, run: () => s.systemLogs.removeOlderThan(d.config.SYSTEM_LOG_RETENTION_DAYS) },
  ];
}

export { AuditEvent } from './audit-event.entity.js';
export { AuditResolver } from './audit.resolver.js';
export { AuditService, type AuditEntry } from './audit.service.js';
export { SystemLog, SystemLogLevel } from './system-log.entity.js';
export { SystemLogService } from './system-log.service.js';
