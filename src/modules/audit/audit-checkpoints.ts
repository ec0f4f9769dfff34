import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** A signed statement "at `at`, link `seq` of the audit chain had hash `hash`". */
export interface Checkpoint {
  seq: number;
  hash: string;
  at: string;
  /** Ed25519 signature (base64url) of `payload(seq, hash, at)`. */
  sig: string;
}

export interface CheckpointRead {
  /** Checkpoints whose signature holds, in file order. */
  valid: Checkpoint[];
  /** 1-based line numbers whose signature does not hold, or that are not checkpoints. */
  invalidLines: number[];
}

/** What is signed, in words for verifiers elsewhere (the auditCheckpointKey query repeats it). */
export const CHECKPOINT_PAYLOAD = 'steward-audit-checkpoint:v1:<seq>:<hash>:<at>, UTF-8, signed with Ed25519';

const payload = (seq: number, hash: string, at: string) =>
  Buffer.from(`steward-audit-checkpoint:v1:${seq}:${hash}:${at}`);

/**
 * Anchors the audit chain outside the database. The hash chain shows that links were
 * changed, but whoever can rewrite the table (the schema's owner, a superuser) can
 * recompute every hash after a change and move the head: the chain then holds again.
 * So a job signs the head now and then (Ed25519, node:crypto) with a key kept in a file
 * the database never sees (AUDIT_CHECKPOINT_KEY_FILE, mode 600, generated on first use)
 * and appends the signed checkpoint to a file (AUDIT_CHECKPOINT_FILE, one JSON line
 * each). verifyAuditChain then requires every signed checkpoint's link to carry the
 * hash it had: a rewritten chain, however consistent, no longer matches.
 */
export class AuditCheckpoints {
  private privateKey?: KeyObject;
  private publicKey?: KeyObject;

  constructor(
    private readonly keyFile: string,
    readonly file: string,
  ) {}

  private keys(): { privateKey: KeyObject; publicKey: KeyObject } {
    if (!this.privateKey) {
      if (!existsSync(this.keyFile)) {
        mkdirSync(dirname(this.keyFile), { recursive: true });
        try {
          // 'wx': of two instances sharing the file, the first one's key is kept.
          writeFileSync(
            this.keyFile,
            generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }),
            { mode: 0o600, flag: 'wx' },
          );
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
      }
      this.privateKey = createPrivateKey(readFileSync(this.keyFile));
      if (this.privateKey.asymmetricKeyType !== 'ed25519')
        throw new Error(`${this.keyFile} must hold an Ed25519 private key (PEM)`);
      this.publicKey = createPublicKey(this.privateKey);
    }
    return { privateKey: this.privateKey, publicKey: this.publicKey! };
  }

  /** The verification key (SPKI PEM), for checking the file elsewhere. */
  publicKeyPem(): string {
    return this.keys().publicKey.export({ type: 'spki', format: 'pem' }).toString();
  }

  /** Appends a signed checkpoint of `head` unless the last one already covers it; answers it, or null. */
  write(head: { seq: number; hash: string }): Checkpoint | null {
    if (head.seq <= 0) return null;
    const last = this.read().valid.at(-1);
    if (last && last.seq >= head.seq) return null;
    const at = new Date().toISOString();
    const cp: Checkpoint = {
      seq: head.seq,
      hash: head.hash,
      at,
      sig: sign(null, payload(head.seq, head.hash, at), this.keys().privateKey).toString('base64url'),
    };
    mkdirSync(dirname(this.file), { recursive: true });
    appendFileSync(this.file, `${JSON.stringify(cp)}\n`, { mode: 0o600 });
    return cp;
  }

  read(): CheckpointRead {
    if (!existsSync(this.file)) return { valid: [], invalidLines: [] };
    const { publicKey } = this.keys();
    const valid: Checkpoint[] = [];
    const invalidLines: number[] = [];
    readFileSync(this.file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (!line.trim()) return;
        try {
          const cp = JSON.parse(line) as Checkpoint;
          const ok =
            Number.isSafeInteger(cp.seq) &&
            typeof cp.hash === 'string' &&
            typeof cp.at === 'string' &&
            typeof cp.sig === 'string' &&
            verify(null, payload(cp.seq, cp.hash, cp.at), publicKey, Buffer.from(cp.sig, 'base64url'));
          if (ok) valid.push({ seq: cp.seq, hash: cp.hash, at: cp.at, sig: cp.sig });
          else invalidLines.push(i + 1);
        } catch {
          invalidLines.push(i + 1);
        }
      });
    return { valid, invalidLines };
  }
}
