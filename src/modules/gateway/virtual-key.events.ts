/**
 * Published (inside the change's transaction) when a virtual key's rules changed: every
 * instance's gateway forgets the key's cached authentication, so the next call reads the
 * new rules. Revocation publishes identity's CREDENTIALS_REVOKED instead.
 */
export const VIRTUAL_KEY_CHANGED = 'gateway.virtualKeyChanged';

export interface VirtualKeyChanged {
  apiTokenId: string;
  userId: string;
}
