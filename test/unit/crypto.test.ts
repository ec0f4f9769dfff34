import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';

import { Envelope } from '../../src/shared/crypto.js';

/** AES-256-GCM envelopes open only with their full 16-byte tag and 12-byte IV. */
const envelope = new Envelope({ '1': randomBytes(32).toString('base64') }, '1');
const CONTEXT = 'user:1|provider:2';

/** `part` 0 is the IV, 1 the tag, 2 the ciphertext of an `iv.tag.ct` value. */
const cut = (value: string, part: 0 | 1, bytes: number) =>
  value
    .split('.')
    .map((p, i) => (i === part ? Buffer.from(p, 'base64url').subarray(0, bytes).toString('base64url') : p))
    .join('.');

describe('Envelope', () => {
  it('opens what it sealed', () => {
    expect(envelope.decrypt(envelope.encrypt('sk-secret', CONTEXT), CONTEXT)).toBe('sk-secret');
  });

  it('refuses a truncated authentication tag, on the secret and on its data key', () => {
    const sealed = envelope.encrypt('sk-secret', CONTEXT);
    for (const bytes of [4, 8, 12, 15]) {
      expect(() => envelope.decrypt({ ...sealed, ct: cut(sealed.ct, 1, bytes) }, CONTEXT), `ct tag ${bytes}`).toThrow(
        /tag/,
      );
      expect(() => envelope.decrypt({ ...sealed, dk: cut(sealed.dk, 1, bytes) }, CONTEXT), `dk tag ${bytes}`).toThrow(
        /tag/,
      );
    }
  });

  it('refuses an IV of another length', () => {
    const sealed = envelope.encrypt('sk-secret', CONTEXT);
    expect(() => envelope.decrypt({ ...sealed, ct: cut(sealed.ct, 0, 8) }, CONTEXT)).toThrow(/IV/);
  });

  it('refuses a value copied onto another context', () => {
    expect(() => envelope.decrypt(envelope.encrypt('sk-secret', CONTEXT), 'user:9|provider:2')).toThrow();
  });
});
