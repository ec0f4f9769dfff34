import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** SHA-256 hex: how high-entropy secrets (tokens, codes) are stored and looked up. */
export const sha256 = (value: string | Buffer): string => createHash('sha256').update(value).digest('hex');

/** A URL-safe random secret of `bytes` random bytes (≥ 16, i.e. ≥ 128 bits). */
export const randomSecret = (bytes = 32): string => randomBytes(Math.max(16, bytes)).toString('base64url');

export const safeEqual = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/** An envelope-encrypted secret as stored in a jsonb column. */
export interface SealedSecret {
  /** Version of the master key that encrypted the data key (rotation). */
  v: string;
  /** The data key, AES-256-GCM encrypted by the master key: iv.tag.ciphertext, base64url. */
  dk: string;
  /** The secret, AES-256-GCM encrypted by the data key: iv.tag.ciphertext, base64url. */
  ct: string;
}

const IV_BYTES = 12;
const TAG_BYTES = 16;

function seal(key: Buffer, plain: Buffer, aad: string): string {
  const iv = randomBytes(IV_BYTES);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([c.update(plain), c.final()]);
  return [iv, c.getAuthTag(), ct].map((b) => b.toString('base64url')).join('.');
}

function open(key: Buffer, sealed: string, aad: string): Buffer {
  const [iv, tag, ct] = sealed.split('.').map((p) => Buffer.from(p, 'base64url'));
  if (!iv || !tag || !ct) throw new Error('malformed sealed value');
  // GCM would check a truncated tag (4 bytes: one forgery in 2^32 tries); only full-length tags and IVs open.
  if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES)
    throw new Error('malformed sealed value: the IV must be 12 bytes and the tag 16');
  const d = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  d.setAAD(Buffer.from(aad));
  d.setAuthTag(tag);
  return Buffer.concat([d.update(ct), d.final()]);
}

/**
 * Envelope encryption with AES-256-GCM: a fresh data key per secret, itself encrypted
 * by the master key. `context` (e.g. `user:<id>|provider:<id>`) is bound to both as
 * associated data, so a sealed value copied onto another row fails to open. Master
 * keys are versioned: `rotate` re-wraps the data key without touching the secret.
 */
export class Envelope {
  private readonly keys: Map<string, Buffer>;

  constructor(
    masterKeys: Record<string, string>,
    private readonly current: string,
  ) {
    this.keys = new Map(Object.entries(masterKeys).map(([v, k]) => [v, Buffer.from(k, 'base64')]));
    if (this.keys.get(current)?.length !== 32) throw new Error('the current master key must be 32 bytes');
  }

  /** The version new secrets are sealed with (and `rotate` re-wraps to). */
  get currentVersion(): string {
    return this.current;
  }

  encrypt(plain: string, context: string): SealedSecret {
    const dataKey = randomBytes(32);
    return {
      v: this.current,
      dk: seal(this.keys.get(this.current)!, dataKey, `dk|${context}`),
      ct: seal(dataKey, Buffer.from(plain, 'utf8'), `ct|${context}`),
    };
  }

  decrypt(sealed: SealedSecret, context: string): string {
    const master = this.keys.get(sealed.v);
    if (!master) throw new Error(`master key version ${sealed.v} is not configured`);
    const dataKey = open(master, sealed.dk, `dk|${context}`);
    return open(dataKey, sealed.ct, `ct|${context}`).toString('utf8');
  }

  /** Re-wraps the data key with the current master key. */
  rotate(sealed: SealedSecret, context: string): SealedSecret {
    if (sealed.v === this.current) return sealed;
    const master = this.keys.get(sealed.v);
    if (!master) throw new Error(`master key version ${sealed.v} is not configured`);
    const dataKey = open(master, sealed.dk, `dk|${context}`);
    return { v: this.current, dk: seal(this.keys.get(this.current)!, dataKey, `dk|${context}`), ct: sealed.ct };
  }
}
