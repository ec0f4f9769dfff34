import sql from 'sql-template-tag';

import type { SqlClient } from '../../db/sql.js';
import { sha256 } from '../../shared/crypto.js';
import { UnauthenticatedError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { Viewer } from '../../shared/scope.js';
import type { AccessTokens } from './access-token.js';
import { API_TOKEN_USABLE, SESSION_USABLE } from './credential-validity.js';
import { API_TOKEN_PREFIX } from './credential.service.js';
import type { Role, Tier } from './user.entity.js';

interface Row {
  user_id: string;
  role: Role;
  tier: Tier;
  usable: boolean;
  token_id?: string;
  prefix?: string;
  service_actor?: string | null;
  touch?: boolean;
  scopes?: string[] | null;
  project_ids?: string[] | null;
}

/**
 * Turns `Bearer <token>` into a Viewer, or throws UNAUTHENTICATED. One indexed query per
 * request checks that the session or API token is still valid and its user active and
 * unblocked, so revocation and blocking take effect at once, not when a JWT expires.
 */
export class Authenticator {
  constructor(
    private readonly db: SqlClient,
    private readonly tokens: AccessTokens,
    private readonly logger?: Logger,
  ) {}

  /** null when no credentials were sent (public operations only). */
  async fromAuthorization(header: string | null | undefined): Promise<Viewer | null> {
    if (!header) return null;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) throw new UnauthenticatedError('Authorization must be "Bearer <token>"');
    return this.fromToken(m[1]!);
  }

  async fromToken(token: string): Promise<Viewer> {
    if (token.startsWith(API_TOKEN_PREFIX)) return this.fromApiToken(token);
    const claims = await this.tokens.verify(token);
    if (!claims) throw UnauthenticatedError.invalidToken();
    const row = await this.db.one<Row>(sql`
      SELECT u.id AS user_id, u.role, u.tier,
             ${SESSION_USABLE} AS usable
        FROM sessions s JOIN users u ON u.id = s.user_id
       WHERE s.id = ${claims.sessionId}::uuid AND s.user_id = ${claims.userId}::uuid`);
    if (!row?.usable) throw UnauthenticatedError.invalidToken();
    return { userId: row.user_id, role: row.role, tier: row.tier, sessionId: claims.sessionId };
  }

  private async fromApiToken(token: string): Promise<Viewer> {
    // last_used_at is written at most once a minute per token: a read must not become a write.
    const row = await this.db.one<Row>(sql`
      WITH t AS (
        SELECT t.id, t.prefix, t.user_id, t.service_actor, u.role, u.tier, t.scopes, t.project_ids,
               ${API_TOKEN_USABLE} AS usable,
               (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute') AS touch
          FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = ${sha256(token)})
      SELECT id AS token_id, prefix, user_id, service_actor, role, tier, usable, touch, scopes, project_ids FROM t`);
    if (!row?.usable) throw UnauthenticatedError.invalidToken();
    // A service token from before scopes were required still reaches everything: said where admins look
    // (the system log, systemLogs), at most once a minute per token like the touch.
    if (row.touch && row.service_actor && !row.scopes?.length)
      this.logger?.warn(
        { module: 'identity', apiTokenId: row.token_id, prefix: row.prefix, serviceActor: row.service_actor },
        'service token without scopes used: it reaches every service operation in every project; replace it with a scoped one',
      );
    if (row.touch)
      void this.db
        .query(sql`UPDATE api_tokens SET last_used_at = now() WHERE id = ${row.token_id}::uuid`)
        .catch(() => {});
    return {
      userId: row.user_id,
      role: row.role,
      tier: row.tier,
      apiTokenId: row.token_id,
      serviceActor: row.service_actor ?? undefined,
      ...(row.scopes?.length ? { scopes: row.scopes } : {}),
      ...(row.project_ids?.length ? { projectIds: row.project_ids } : {}),
    };
  }
}
