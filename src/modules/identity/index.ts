import { UserFieldsResolver } from './user.fields.js';
import sql from 'sql-template-tag';
import type { Config } from '../../config.js';
import type { SqlClient } from '../../db/sql.js';
import type { EventBus } from '../../events/bus.js';
import type { JobDefinition } from '../../jobs/scheduler.js';
import type { Envelope } from '../../shared/crypto.js';
import type { Logger } from '../../shared/logger.js';
import type { Mailer } from '../../shared/mailer.js';
import type { AuditService } from '../audit/audit.service.js';
import { AccessTokens } from './access-token.js';
import { ApiToken } from './api-token.entity.js';
import { AuthResolver } from './auth.resolver.js';
import { AuthService } from './auth.service.js';
import { Authenticator } from './authenticate.js';
import { CredentialResolver } from './credential.resolver.js';
import { CredentialService } from './credential.service.js';
import { Invitation } from './invitation.entity.js';
import { PasswordReset } from './password-reset.entity.js';
import { PasswordHasher } from './password.js';
import { Session } from './session.entity.js';
import { User } from './user.entity.js';
import { UserResolver } from './user.resolver.js';
import { UserService } from './user.service.js';

export const identityEntities = [User, Session, ApiToken, Invitation, PasswordReset];
export const identityResolvers = [AuthResolver, UserResolver, UserFieldsResolver, CredentialResolver] as const;

export interface IdentityDeps {
  config: Config;
  db: SqlClient;
  bus: EventBus;
  envelope: Envelope;
  mailer: Mailer;
  audit: AuditService;
  logger: Logger;
}

export function createIdentity(d: IdentityDeps) {
  const hasher = new PasswordHasher(
    { memoryCost: d.config.ARGON2_MEMORY_KIB, timeCost: d.config.ARGON2_TIME_COST, parallelism: d.config.ARGON2_PARALLELISM },
    d.config.HASH_CONCURRENCY,
  );
  const tokens = new AccessTokens(d.config.TOKEN_SIGNING_KEY, d.config.ACCESS_TOKEN_TTL_SECONDS);
  const auth = new AuthService({ config: d.config, hasher, tokens, envelope: d.envelope, mailer: d.mailer, bus: d.bus, audit: d.audit, logger: d.logger });
  return {
    auth,
    users: new UserService(d.db, d.bus, d.audit, auth),
    credentials: new CredentialService(d.db, d.audit, auth),
    authenticator: new Authenticator(d.db, tokens),
  };
}

/**
 * Deletes sessions past their expiry (a refresh token then cannot be used, so reuse
 * detection no longer needs the row) and reset tokens that are used or expired.
 */
export const identityJobs = (db: SqlClient): JobDefinition[] => [
  {
    name: 'identity.purgeExpiredCredentials',
    intervalMs: 15 * 60 * 1000,
    async run() {
      const sessions = await db.query(sql`DELETE FROM sessions WHERE expires_at < now() RETURNING id`);
      const resets = await db.query(sql`DELETE FROM password_resets WHERE expires_at < now() OR used_at IS NOT NULL RETURNING id`);
      return { sessions: sessions.length, passwordResets: resets.length };
    },
  },
];

export { Role, Tier, User, UserStatus } from './user.entity.js';
export { CREDENTIALS_REVOKED, USER_UPDATED, type CredentialsRevoked, type UserUpdated } from './identity.events.js';
