import { AuditChainHead } from './audit-chain-head.entity.js';
import { AuditEvent } from './audit-event.entity.js';
import type { AuditService } from './audit.service.js';
import { SystemLog } from './system-log.entity.js';
import type { SystemLogService } from './system-log.service.js';

/** The audit module's surface: what other modules and src/db/entities.ts may import. */
export const auditEntities = [AuditEvent, AuditChainHead, SystemLog];

export interface AuditServices {
  audit: AuditService;
  systemLogs: SystemLogService;
}

export { AuditEvent } from './audit-event.entity.js';
export { AuditService, type AuditEntry } from './audit.service.js';
export { SystemLog, SystemLogLevel } from './system-log.entity.js';
export { SystemLogService } from './system-log.service.js';
export { canonicalize } from './canonical.js';
export { CONTENT } from './audit-chain.js';
