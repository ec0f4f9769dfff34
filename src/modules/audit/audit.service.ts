import type { Scope } from '../../shared/scope.js';
import { AuditEvent } from './audit-event.entity.js';

export interface AuditEntry {
  action: string;
  entityType: string;
  entityId?: string | null;
  before?: unknown;
  after?: unknown;
  outcome?: 'SUCCESS' | 'FAILURE';
  /** Overrides the viewer (e.g. a login before anyone is signed in, or a job). */
  actorId?: string | null;
  actorLabel?: string;
}

/**
 * The audit hook: every data-changing service method records what it did through
 * here, with the transaction's EntityManager, so the record commits or rolls back
 * with the change itself.
 */
export class AuditService {
  record(tx: Scope, entry: AuditEntry): AuditEvent {
    const v = tx.viewer;
    const event = tx.em.create(AuditEvent, {
      actorId: entry.actorId !== undefined ? entry.actorId : (v?.userId ?? null),
      actorLabel: entry.actorLabel ?? v?.serviceActor ?? (v ? `user:${v.userId}` : 'anonymous'),
      action: entry.action,
      entityType: entry.entityType,
      entityId: entry.entityId ?? null,
      before: entry.before ?? null,
      after: entry.after ?? null,
      outcome: entry.outcome ?? 'SUCCESS',
      requestId: tx.meta.requestId,
      ip: tx.meta.ip,
      userAgent: tx.meta.userAgent,
    });
    tx.em.persist(event);
    return event;
  }
}
