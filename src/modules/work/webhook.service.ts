import { randomBytes } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import sql from 'sql-template-tag';

import type { SqlClient } from '../../db/sql.js';
import { conflictOnDuplicate } from '../../shared/conflict.js';
import { paginate, type Connection, type PageArgs } from '../../shared/connection.js';
import type { Envelope, SealedSecret } from '../../shared/crypto.js';
import { NotFoundError, requireUuid } from '../../shared/errors.js';
import { readModel } from '../../shared/read-model.js';
import { inTransaction, type Scope, type Viewer } from '../../shared/scope.js';
import type { AuditService } from '../audit/index.js';
import type { NotificationType } from './notification.entity.js';
import { Webhook, WebhookFormat, webhookSecretContext } from './webhook.entity.js';
import type { CreateWebhookInput } from './webhook.inputs.js';

export interface WebhookDeps {
  db: SqlClient;
  envelope: Envelope;
  audit: AuditService;
}

/** A webhook with what a delivery needs: its secret in clear. */
export interface WebhookTarget {
  id: string;
  name: string;
  url: string;
  format: WebhookFormat;
  isActive: boolean;
  secret: string;
}

/** Standard Webhooks' secret form: `whsec_` and the base64 of the key (here 32 random bytes). */
const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

const snapshot = (w: Webhook) => ({ name: w.name, url: w.url, format: w.format, types: w.types, isActive: w.isActive });

/**
 * The organisation's outgoing webhooks (admins). The signing secret is generated here,
 * returned once by `create` and kept only envelope-encrypted; the audit trail never
 * sees it. Deleting a webhook drops its pending deliveries with it.
 */
export class WebhookService {
  constructor(private readonly deps: WebhookDeps) {}

  async create(scope: Scope, viewer: Viewer, input: CreateWebhookInput): Promise<{ webhook: Webhook; secret: string }> {
    const secret = newSecret();
    return conflictOnDuplicate(
      () =>
        inTransaction(scope, async (tx) => {
          const webhook = tx.em.create(Webhook, {
            name: input.name.trim(),
            url: input.url,
            format: input.format ?? WebhookFormat.STANDARD,
            types: [...new Set(input.types ?? [])],
            secret: {} as SealedSecret,
            createdBy: viewer.serviceActor ? null : viewer.userId,
          });
          webhook.secret = this.deps.envelope.encrypt(secret, webhookSecretContext(webhook.id));
          await tx.em.flush();
          this.deps.audit.record(tx, {
            action: 'webhook.create',
            entityType: 'Webhook',
            entityId: webhook.id,
            after: snapshot(webhook),
          });
          return { webhook, secret };
        }),
      `A webhook named ${input.name.trim()} already exists`,
    );
  }

  list(fields: Iterable<string>, page: PageArgs): Promise<Connection<Record<string, unknown>>> {
    return paginate(
      this.deps.db,
      { model: readModel(Webhook), fields, where: sql`true`, sort: { property: 'id', direction: 'ASC', type: 'uuid' } },
      page,
    );
  }

  async remove(scope: Scope, id: string): Promise<boolean> {
    const webhookId = requireUuid(id);
    return inTransaction(scope, async (tx) => {
      const webhook = await tx.em.findOne(Webhook, webhookId);
      if (!webhook) throw new NotFoundError('Webhook', webhookId);
      this.deps.audit.record(tx, {
        action: 'webhook.delete',
        entityType: 'Webhook',
        entityId: webhook.id,
        before: snapshot(webhook),
      });
      tx.em.remove(webhook);
      return true;
    });
  }

  /** The ids of the active webhooks that take notifications of `type`, in the caller's transaction. */
  async activeIdsFor(em: EntityManager, types: readonly NotificationType[]): Promise<Map<NotificationType, string[]>> {
    const byType = new Map<NotificationType, string[]>(types.map((t) => [t, []]));
    if (!types.length) return byType;
    const rows = await em.execute<{ id: string; types: string[] }[]>(
      `SELECT id, types FROM webhooks WHERE is_active ORDER BY id`,
    );
    for (const r of rows) for (const t of types) if (!r.types.length || r.types.includes(t)) byType.get(t)!.push(r.id);
    return byType;
  }

  /** A webhook as its delivery needs it (null when it no longer exists). */
  async target(id: string): Promise<WebhookTarget | null> {
    const row = await this.deps.db.one<{
      id: string;
      name: string;
      url: string;
      format: WebhookFormat;
      is_active: boolean;
      secret: SealedSecret;
    }>(sql`SELECT id, name, url, format, is_active, secret FROM webhooks WHERE id = ${id}::uuid`);
    if (!row) return null;
    return {
      id: row.id,
      name: row.name,
      url: row.url,
      format: row.format,
      isActive: row.is_active,
      secret: this.deps.envelope.decrypt(row.secret, webhookSecretContext(row.id)),
    };
  }
}
