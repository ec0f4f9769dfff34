/**
 * Published when credentials stop being valid, so that every instance closes the
 * WebSockets that were opened with them (a socket authenticates once, at init).
 */
export const CREDENTIALS_REVOKED = 'identity.credentialsRevoked';

export interface CredentialsRevoked {
  userId: string;
  /** Close sockets opened with any of this user's sessions (logoutAll, password change). */
  allSessions?: boolean;
  /** Close these sessions' sockets (logout, refresh-token reuse). */
  sessionIds?: string[];
  /** Close sockets opened with this API token (revocation). */
  apiTokenId?: string;
  /** Close every socket of the user, API tokens included (block, suspend). */
  everything?: boolean;
  reason: string;
}

/** A user's role, status, tier, block or profile changed. */
export const USER_UPDATED = 'identity.userUpdated';

export interface UserUpdated {
  id: string;
}
