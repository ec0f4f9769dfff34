import { ApiToken } from './api-token.entity.js';
import type { AuthService } from './auth.service.js';
import type { Authenticator } from './authenticate.js';
import type { CredentialService } from './credential.service.js';
import { Invitation } from './invitation.entity.js';
import { PasswordReset } from './password-reset.entity.js';
import { Session } from './session.entity.js';
import { User } from './user.entity.js';
import type { UserService } from './user.service.js';

/** The identity module's surface: what other modules and src/db/entities.ts may import. */
export const identityEntities = [User, Session, ApiToken, Invitation, PasswordReset];

export interface IdentityServices {
  auth: AuthService;
  users: UserService;
  credentials: CredentialService;
  authenticator: Authenticator;
}

export { Role, Tier, User, UserStatus } from './user.entity.js';
export { CREDENTIALS_REVOKED, USER_UPDATED, type CredentialsRevoked, type UserUpdated } from './identity.events.js';
export type { UserService } from './user.service.js';
export type { Authenticator } from './authenticate.js';
