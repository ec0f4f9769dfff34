import sql from 'sql-template-tag';

import type { SqlClient } from '../../db/sql.js';
import { NEWEST_FIRST, paginate, type PageArgs } from '../../shared/connection.js';
import { randomSecret, sha256 } from '../../shared/crypto.js';
import { BadInputError, NotFoundError, requireUuid } from '../../shared/errors.js';
import { and, defineComputed, readModel } from '../../shared/read-model.js';
import { inTransaction, type Scope, type Viewer } from '../../shared/scope.js';
import { isTokenScope, SCOPE_NAMES } from '../../shared/token-scopes.js';
import { isHumanAdmin } from '../../shared/viewer.js';
import type { AuditService } from '../audit/index.js';
import { API_TOKEN_PREFIX, ApiToken } from './api-token.entity.js';
import type { AuthService } from './auth.service.js';
import { Invitation } from './invitation.entity.js';
import type { Role } from './user.entity.js';

export { API_TOKEN_PREFIX };

/** A token without scopes has unlimited reach (ApiToken.unscoped): computed, never stored, so it cannot drift. */
defineComputed(ApiToken, { unscoped: 'cardinality(t.scopes) = 0' });

/**
 * Personal and service API tokens, and invitations: the secrets Steward hands out once.
 * Only their SHA-256 is stored (they are random, so no slow hash is needed): a copy of the
 * database yields no usable credential, and a lost token is replaced, never shown again.
 */
export class CredentialService {
  constructor(
    private readonly db: SqlClient,
    private readonly audit: AuditService,
    private readonly auth: AuthService,
  ) {}

  /** A personal token (acts as the viewer) or, for admins, a service token acting as `serviceActor`. */
  async createApiToken(
    scope: Scope,
    viewer: Viewer,
    input: {
      name: string;
      expiresAt?: Date | null;
      scopes?: string[] | null;
      projectIds?: string[] | null;
      serviceActor?: string | null;
    },
  ): Promise<{ token: string; apiToken: ApiToken }> {
    if (input.expiresAt && input.expiresAt <= new Date())
      throw BadInputError.field('expiresAt', 'must be in the future');
    // A service token acts for the system in every project it may reach: it must not live for ever.
    // A service token runs unattended, where a leak goes unnoticed longest: it must end by itself.
    if (input.serviceActor && !input.expiresAt)
      throw BadInputError.field('expiresAt', 'is required for a service token');
    const scopes = [...new Set(input.scopes ?? [])];
    // A service token without scopes would reach every service operation in every project: it must say what it is for.
    if (input.serviceActor && !scopes.length)
      throw BadInputError.field(
        'scopes',
        `are required for a service token (known: ${SCOPE_NAMES.join(', ')}; "read" and "write" together: every operation)`,
      );
    const unknown = scopes.filter((s) => !isTokenScope(s));
    if (unknown.length)
      throw BadInputError.field('scopes', `unknown scope ${unknown.join(', ')} (known: ${SCOPE_NAMES.join(', ')})`);
    const projectIds = [...new Set((input.projectIds ?? []).map((id) => requireUuid(id, 'projectIds')))];
    // A token cannot mint a token with more than it has itself.
    if (viewer.scopes?.length && (!scopes.length || scopes.some((s) => !viewer.scopes!.includes(s))))
      throw BadInputError.field('scopes', `must be within this token's own scopes (${viewer.scopes.join(', ')})`);
    if (viewer.projectIds?.length && (!projectIds.length || projectIds.some((p) => !viewer.projectIds!.includes(p))))
      throw BadInputError.field('projectIds', "must be within this token's own projects");
    const token = `${API_TOKEN_PREFIX}${randomSecret(32)}`;
    return inTransaction(scope, async (tx) => {
      const apiToken = tx.em.create(ApiToken, {
        user: viewer.userId,
        name: input.name,
        prefix: token.slice(0, 12),
        tokenHash: sha256(token),
        scopes,
        projectIds,
        serviceActor: input.serviceActor ?? null,
        expiresAt: input.expiresAt ?? null,
      });
      await tx.em.flush();
      this.audit.record(tx, {
        action: input.serviceActor ? 'apiToken.createService' : 'apiToken.create',
        entityType: 'ApiToken',
        entityId: apiToken.id,
        after: { name: input.name, prefix: apiToken.prefix, serviceActor: apiToken.serviceActor, scopes, projectIds },
      });
      return { token, apiToken };
    });
  }

  listApiTokens(viewer: Viewer, fields: Iterable<string>, page: PageArgs) {
    return paginate(
      this.db,
      { model: readModel(ApiToken), fields, where: sql`t.user_id = ${viewer.userId}`, sort: NEWEST_FIRST },
      page,
    );
  }

  /** Owner or admin. Sockets opened with it close at once on every instance. */
  /** Revokes the token; it no longer authenticates on this instance once this answers (on others, moments later). */
  async revokeApiToken(scope: Scope, viewer: Viewer, id: string): Promise<ApiToken> {
    const tokenId = requireUuid(id);
    let revoked = false;
    const revoke = () =>
      inTransaction(scope, async (tx) => {
        const t = await tx.em.findOne(ApiToken, tokenId);
        if (!t || (t.user.id !== viewer.userId && !isHumanAdmin(viewer))) throw new NotFoundError('ApiToken', tokenId);
        if (!t.revokedAt) {
          t.revokedAt = new Date();
          this.audit.record(tx, { action: 'apiToken.revoke', entityType: 'ApiToken', entityId: t.id });
          await this.auth.publishRevoked(tx, { userId: t.user.id, apiTokenId: t.id, reason: 'API token revoked' });
          revoked = true;
        }
        return t;
      });
    return this.auth.tokenRevocationInForce(tokenId, revoke, () => revoked);
  }

  async createInvitation(
    scope: Scope,
    input: { role: Role; maxUses: number; expiresAt: Date; email?: string | null },
  ): Promise<{ code: string; invitation: Invitation }> {
    if (input.expiresAt <= new Date()) throw BadInputError.field('expiresAt', 'must be in the future');
    const code = `inv_${randomSecret(18)}`;
    return inTransaction(scope, async (tx) => {
      const invitation = tx.em.create(Invitation, {
        codeHash: sha256(code),
        role: input.role,
        maxUses: input.maxUses,
        expiresAt: input.expiresAt,
        email: input.email?.trim().toLowerCase() ?? null,
        createdBy: scope.viewer?.userId ?? null,
      });
      await tx.em.flush();
      this.audit.record(tx, {
        action: 'invitation.create',
        entityType: 'Invitation',
        entityId: invitation.id,
        after: { role: input.role, maxUses: input.maxUses, email: invitation.email },
      });
      return { code, invitation };
    });
  }

  listInvitations(fields: Iterable<string>, page: PageArgs, activeOnly: boolean) {
    const where = activeOnly ? sql`t.revoked_at IS NULL AND t.expires_at > now() AND t.uses < t.max_uses` : null;
    return paginate(this.db, { model: readModel(Invitation), fields, where: and([where]), sort: NEWEST_FIRST }, page);
  }

  async revokeInvitation(scope: Scope, id: string): Promise<Invitation> {
    const invitationId = requireUuid(id);
    return inTransaction(scope, async (tx) => {
      const inv = await tx.em.findOne(Invitation, invitationId);
      if (!inv) throw new NotFoundError('Invitation', invitationId);
      inv.revokedAt ??= new Date();
      this.audit.record(tx, { action: 'invitation.revoke', entityType: 'Invitation', entityId: inv.id });
      return inv;
    });
  }
}
