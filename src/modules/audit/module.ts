import sql from 'sql-template-tag';

import { defineModule, type ModuleDeps } from '../define-module.js';
import { AuditCheckpointResolver } from './audit-checkpoint.resolver.js';
import { AuditResolver } from './audit.resolver.js';
import { AuditService } from './audit.service.js';
import { auditEntities, type AuditServices } from './index.js';
import { SystemLogService } from './system-log.service.js';

/** The audit trail and the system logs; starts keeping the logger's warnings and errors. */
export const auditModule = defineModule({
  name: 'audit',
  entities: auditEntities,
  resolvers: [AuditResolver, AuditCheckpointResolver],
  create(deps: ModuleDeps): AuditServices {
    const audit = new AuditService(deps);
    const systemLogs = new SystemLogService(deps.db, { level: deps.config.SYSTEM_LOG_LEVEL });
    systemLogs.capture(deps.logger);
    return { audit, systemLogs };
  },
  /**
   * - audit.seal: links events no commit hook announced (written outside a transaction,
   *   by another program, or committed by an instance that stopped before sealing);
   * - audit.checkpoint: signs the chain's head into the checkpoint file (./audit-checkpoints.ts);
   * - audit.partitions: keeps AUDIT_PARTITIONS_AHEAD monthly partitions ready;
   * - audit.systemLogRetention: deletes system logs past SYSTEM_LOG_RETENTION_DAYS.
   */
  jobs: (services, deps) => [
    { name: 'audit.seal', intervalMs: deps.config.AUDIT_SEAL_INTERVAL_MS, run: () => services.audit.chain.seal() },
    {
      name: 'audit.checkpoint',
      intervalMs: deps.config.AUDIT_CHECKPOINT_INTERVAL_MS,
      run: async () => ({ signedSeq: await services.audit.checkpoint() }),
    },
    {
      name: 'audit.partitions',
      intervalMs: 3600_000,
      async run({ db, logger }) {
        const made = await db.one<{ n: number }>(
          sql`SELECT steward_audit_ensure_partitions(now(), ${deps.config.AUDIT_PARTITIONS_AHEAD}::int) AS n`,
        );
        const stray = await db.one<{ n: number }>(sql`SELECT count(*)::int AS n FROM audit_events_default`);
        if (stray?.n)
          logger.warn(
            { module: 'audit', events: stray.n },
            'audit events sit in the default partition: a monthly partition was missing when they were written',
          );
        return { created: made?.n ?? 0 };
      },
    },
    {
      name: 'audit.systemLogRetention',
      intervalMs: 3600_000,
      run: () => services.systemLogs.removeOlderThan(deps.config.SYSTEM_LOG_RETENTION_DAYS),
    },
  ],
});
