import sql from 'sql-template-tag';

import type { AuditService } from '../audit/index.js';
import { defineModule, type ModuleDeps } from '../define-module.js';
import { AccessTokens } from './access-token.js';
import { AuthLimits } from './auth-limits.js';
import { AuthResolver } from './auth.resolver.js';
import { AuthService } from './auth.service.js';
import { Authenticator } from './authenticate.js';
import { ApiTokenFieldsResolver, CredentialResolver } from './credential.resolver.js';
import { CredentialService } from './credential.service.js';
import { identityEntities, type IdentityServices } from './index.js';
import { PasswordHasher } from './password.js';
import { UserFieldsResolver } from './user.fields.js';
import { UserResolver } from './user.resolver.js';
import { UserService } from './user.service.js';

/** Accounts, sessions, API tokens, invitations and password resets. */
export const identityModule = defineModule({
  name: 'identity',
  entities: identityEntities,
  resolvers: [AuthResolver, UserResolver, UserFieldsResolver, CredentialResolver, ApiTokenFieldsResolver],
  create(deps: ModuleDeps<{ audit: AuditService }>): IdentityServices {
    const { config } = deps;
    const hasher = new PasswordHasher(
      {
        memoryCost: config.ARGON2_MEMORY_KIB,
        timeCost: config.ARGON2_TIME_COST,
        parallelism: config.ARGON2_PARALLELISM,
      },
      config.HASH_CONCURRENCY,
    );
    const tokens = new AccessTokens(config.TOKEN_SIGNING_KEY, config.ACCESS_TOKEN_TTL_SECONDS);
    const limits = new AuthLimits(deps.db.pool, config);
    const auth = new AuthService({
      config,
      hasher,
      tokens,
      envelope: deps.envelope,
      mailer: deps.mailer,
      bus: deps.bus,
      audit: deps.audit,
      logger: deps.logger,
      limits,
    });
    return {
      auth,
      users: new UserService(deps.db, deps.bus, deps.audit, auth),
      credentials: new CredentialService(deps.db, deps.audit, auth),
      authenticator: new Authenticator(deps.db, tokens, deps.logger),
    };
  },
  /**
   * Deletes sessions past their expiry (a refresh token then cannot be used, so reuse
   * detection no longer needs the row) and reset tokens that are used or expired.
   */
  jobs: (_services, { db }) => [
    {
      name: 'identity.purgeExpiredCredentials',
      intervalMs: 15 * 60 * 1000,
      async run() {
        const sessions = await db.query(sql`DELETE FROM sessions WHERE expires_at < now() RETURNING id`);
        const resets = await db.query(
          sql`DELETE FROM password_resets WHERE expires_at < now() OR used_at IS NOT NULL RETURNING id`,
        );
        return { sessions: sessions.length, passwordResets: resets.length };
      },
    },
  ],
});
