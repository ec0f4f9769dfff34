export { AuditEvent } from './audit-event.entity.js';
export { AuditResolver } from './audit.resolver.js';
export { AuditService } from './audit.service.js';
