import sql from 'sql-template-tag';

import type { SqlClient } from '../../db/sql.js';
import type { Viewer } from '../../shared/scope.js';
import { API_TOKEN_USABLE, SESSION_USABLE } from './credential-validity.js';

/** What a long-lived connection needs to know of the credentials it was opened with. */
export interface CredentialStatus {
  /** Still accepted (credential-validity.ts: the rule Authenticator checks per request). */
  usable: boolean;
  /** When the session or API token expires (null: an API token without an expiry). */
  expiresAt: Date | null;
}

/** The key of a viewer's credentials: its session, or its API token. */
export const credentialKey = (v: Pick<Viewer, 'sessionId' | 'apiTokenId'>) =>
  v.sessionId ? `s:${v.sessionId}` : `t:${v.apiTokenId}`;

/**
 * The status of many viewers' credentials in two statements (sessions, API tokens),
 * by credentialKey; a credential that no longer exists is missing from the answer.
 */
export async function credentialStatuses(
  db: SqlClient,
  viewers: Iterable<Pick<Viewer, 'sessionId' | 'apiTokenId'>>,
): Promise<Map<string, CredentialStatus>> {
  const sessionIds = new Set<string>();
  const tokenIds = new Set<string>();
  for (const v of viewers) {
    if (v.sessionId) sessionIds.add(v.sessionId);
    else if (v.apiTokenId) tokenIds.add(v.apiTokenId);
  }
  const out = new Map<string, CredentialStatus>();
  const [sessions, tokens] = await Promise.all([
    sessionIds.size
      ? db.query<{ id: string; usable: boolean; expires_at: Date }>(sql`
          SELECT s.id, ${SESSION_USABLE} AS usable, s.expires_at
            FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ANY(${[...sessionIds]}::uuid[])`)
      : [],
    tokenIds.size
      ? db.query<{ id: string; usable: boolean; expires_at: Date | null }>(sql`
          SELECT t.id, ${API_TOKEN_USABLE} AS usable, t.expires_at
            FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ANY(${[...tokenIds]}::uuid[])`)
      : [],
  ]);
  for (const r of sessions) out.set(`s:${r.id}`, { usable: r.usable, expiresAt: r.expires_at });
  for (const r of tokens) out.set(`t:${r.id}`, { usable: r.usable, expiresAt: r.expires_at });
  return out;
}
