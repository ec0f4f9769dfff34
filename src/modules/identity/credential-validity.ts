import { raw } from 'sql-template-tag';

/**
 * When a credential is still accepted, in one place for every check: per request
 * (Authenticator) and for long-lived connections (credentialStatuses). Its user must be
 * active and unblocked, so blocking a user takes effect at once, whatever the credential.
 * Each is a boolean SQL expression over `u` (users) and `s` (sessions) or `t` (api_tokens).
 */
const USER_ACTIVE = `u.status = 'ACTIVE' AND NOT u.is_blocked`;

/** A session: not revoked, not expired. */
export const SESSION_USABLE = raw(`(s.revoked_at IS NULL AND s.expires_at > now() AND ${USER_ACTIVE})`);

/** An API token: not revoked, and not expired when it has an expiry. */
export const API_TOKEN_USABLE = raw(
  `(t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now()) AND ${USER_ACTIVE})`,
);
