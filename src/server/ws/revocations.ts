import { credentialKey, credentialStatuses } from '../../modules/identity/credential-status.js';
import { CREDENTIALS_REVOKED, type CredentialsRevoked } from '../../modules/identity/identity.events.js';
import type { Runtime } from '../context.js';
import { CREDENTIALS_ENDED, type SocketState } from './socket.js';

/**
 * Which sockets still have valid credentials. A socket authenticates once, at
 * connection_init; afterwards it is closed (4401) when
 * - a revocation is published on any instance (logout, block, password change, token
 *   revocation), found through the index by user;
 * - the event bus comes back after losing its LISTEN connection: revocations published
 *   meanwhile were never heard, so every socket's credentials are read again;
 * - its session or API token expires (checked by the keep-alive sweep, once per round).
 */
export class Revocations {
  private readonly byUser = new Map<string, Set<SocketState>>();
  private readonly offRevoked: () => void;
  private readonly offReconnect: () => void;

  constructor(private readonly runtime: Runtime) {
    this.offRevoked = runtime.bus.on(CREDENTIALS_REVOKED, (p) => this.revoked(p as CredentialsRevoked));
    this.offReconnect = runtime.bus.onReconnect(() => {
      this.recheckAll().catch((err) =>
        runtime.logger.error(
          { err, module: 'ws' },
          'could not re-check WebSocket credentials after the event bus reconnected',
        ),
      );
    });
  }

  /** Indexes an authenticated socket; false when its credentials are no longer usable. */
  async add(state: SocketState): Promise<boolean> {
    const viewer = state.viewer!;
    const status = (await credentialStatuses(this.runtime.db, [viewer])).get(credentialKey(viewer));
    if (!status?.usable) return false;
    state.expiresAt = status.expiresAt ? status.expiresAt.getTime() : Infinity;
    let set = this.byUser.get(viewer.userId);
    if (!set) this.byUser.set(viewer.userId, (set = new Set()));
    set.add(state);
    return true;
  }

  remove(state: SocketState): void {
    if (!state.viewer) return;
    const set = this.byUser.get(state.viewer.userId);
    set?.delete(state);
    if (set?.size === 0) this.byUser.delete(state.viewer.userId);
  }

  /** Closes the socket if its credentials have run out; true when it did. */
  closeIfExpired(state: SocketState, now: number): boolean {
    if (!state.viewer || state.expiresAt > now) return false;
    state.socket.close(CREDENTIALS_ENDED, state.viewer.sessionId ? 'Session expired' : 'API token expired');
    return true;
  }

  private revoked(r: CredentialsRevoked): void {
    for (const s of this.byUser.get(r.userId) ?? []) {
      const v = s.viewer!;
      const hit =
        r.everything ||
        (r.allSessions && v.sessionId) ||
        (v.sessionId && r.sessionIds?.includes(v.sessionId)) ||
        (v.apiTokenId && r.apiTokenId === v.apiTokenId);
      if (hit) s.socket.close(CREDENTIALS_ENDED, `Credentials revoked: ${r.reason}`.slice(0, 120));
    }
  }

  /** Reads every socket's credentials again (two statements) and closes those no longer usable. */
  async recheckAll(): Promise<void> {
    const states = [...this.byUser.values()].flatMap((set) => [...set]);
    if (!states.length) return;
    const statuses = await credentialStatuses(
      this.runtime.db,
      states.map((s) => s.viewer!),
    );
    for (const s of states) {
      const status = statuses.get(credentialKey(s.viewer!));
      if (!status?.usable) s.socket.close(CREDENTIALS_ENDED, 'Credentials revoked');
      else s.expiresAt = status.expiresAt ? status.expiresAt.getTime() : Infinity;
    }
  }

  close(): void {
    this.offRevoked();
    this.offReconnect();
  }
}
