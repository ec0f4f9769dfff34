import { createPublicKey, verify as verifySignature } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { UpdateMeDocument, VerifyAuditChainDocument } from '../../generated/graphql.js';
import { codes, gql, ok } from '../../support/client.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { createUser, firstAdmin, unique, type TestUser } from '../../support/users.js';

/**
 * The audit chain anchored outside the database: signed checkpoints of its head
 * (AUDIT_CHECKPOINT_FILE, signed with AUDIT_CHECKPOINT_KEY_FILE's Ed25519 key) let
 * verifyAuditChain catch what the hash chain alone cannot — a partition rewritten by
 * someone with the owner's rights, every later hash recomputed and the head moved.
 */
let s: TestServer;
let admin: TestUser;
beforeAll(async () => {
  s = await startTestServer();
  admin = await firstAdmin(s);
});
afterAll(() => s?.close());

const verify = async () => (await ok(s.url, VerifyAuditChainDocument, {}, admin.token)).verifyAuditChain;
const checkpoint = () => s.app.runtime.scheduler.runNow('audit.checkpoint');
const lines = () => readFileSync(s.config.AUDIT_CHECKPOINT_FILE, 'utf8').split('\n').filter(Boolean);

/** As the superuser with triggers off: what an intruder with the database's keys can do. */
async function privileged(fn: (c: pg.Client) => Promise<unknown>) {
  const c = new pg.Client({ connectionString: s.dbUrl });
  await c.connect();
  try {
    await c.query('SET session_replication_role = replica');
    await fn(c);
  } finally {
    await c.end();
  }
}

describe('signed audit checkpoints', () => {
  it('signs the head into a file outside the database, once per head', async () => {
    const u = await createUser(s, admin);
    await ok(s.url, UpdateMeDocument, { input: { name: unique('n-') } }, u.token);
    expect((await checkpoint()).ran).toBe(true);
    const head = (await s.sql<{ seq: number; hash: string }>(`SELECT seq::int AS seq, hash FROM audit_chain_head`))[0]!;
    expect(head.seq).toBeGreaterThan(0);
    expect(lines()).toHaveLength(1);
    expect(JSON.parse(lines()[0]!)).toMatchObject({ seq: head.seq, hash: head.hash });
    expect(statSync(s.config.AUDIT_CHECKPOINT_KEY_FILE).mode & 0o777).toBe(0o600);
    // Nothing new sealed: no new line.
    await checkpoint();
    expect(lines()).toHaveLength(1);
    expect((await verify()).ok).toBe(true);
  });

  it('can be verified offline with the public key alone, against the audit export', async () => {
    const r = await ok(
      s.url,
      `{ auditCheckpointKey { algorithm publicKeyPem signedPayload } auditCheckpoints { seq hash at signature } }`,
      {},
      admin.token,
    );
    expect(r.auditCheckpointKey).toMatchObject({ algorithm: 'Ed25519' });
    expect(r.auditCheckpoints).toHaveLength(1);
    // What an auditor does elsewhere: no Steward code, no private key, the documented payload.
    const key = createPublicKey(r.auditCheckpointKey.publicKeyPem);
    expect(key.asymmetricKeyType).toBe('ed25519');
    const holds = (c: { seq: number; hash: string; at: string; signature: string }) =>
      verifySignature(
        null,
        Buffer.from(`steward-audit-checkpoint:v1:${c.seq}:${c.hash}:${c.at}`),
        key,
        Buffer.from(c.signature, 'base64url'),
      );
    const [cp] = r.auditCheckpoints;
    expect(holds(cp)).toBe(true);
    expect(holds({ ...cp, hash: 'f'.repeat(64) })).toBe(false);
    expect(holds({ ...cp, seq: cp.seq + 1 })).toBe(false);
    // The signed link is in the export with that hash.
    const exported = await fetch(`${s.app.url}/exports/audit.jsonl`, {
      headers: { authorization: `Bearer ${admin.token}` },
    });
    expect(exported.status).toBe(200);
    const events = (await exported.text())
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { seq: number; hash: string });
    expect(events.find((e) => Number(e.seq) === cp.seq)?.hash).toBe(cp.hash);

    const u = await createUser(s, admin);
    expect(codes(await gql(s.url, `{ auditCheckpointKey { algorithm } }`, {}, u.token))).toEqual(['FORBIDDEN']);
    expect(codes(await gql(s.url, `{ auditCheckpoints { seq } }`, {}, u.token))).toEqual(['FORBIDDEN']);
    expect(codes(await gql(s.url, `{ auditCheckpoints(last: 0) { seq } }`, {}, admin.token))).toEqual([
      'BAD_USER_INPUT',
    ]);
  });

  it('reveals a forged checkpoint line', async () => {
    const original = readFileSync(s.config.AUDIT_CHECKPOINT_FILE, 'utf8');
    const cp = JSON.parse(lines()[0]!);
    writeFileSync(s.config.AUDIT_CHECKPOINT_FILE, `${JSON.stringify({ ...cp, hash: 'f'.repeat(64) })}\n`);
    try {
      const v = await verify();
      expect(v.ok).toBe(false);
      expect(v.reason).toMatch(/checkpoint line 1 does not carry a valid signature/);
    } finally {
      writeFileSync(s.config.AUDIT_CHECKPOINT_FILE, original);
    }
    expect((await verify()).ok).toBe(true);
  });

  it('catches a partition rewritten and re-hashed from some link on, head included', async () => {
    const u = await createUser(s, admin);
    for (let i = 0; i < 3; i++) await ok(s.url, UpdateMeDocument, { input: { name: unique('n-') } }, u.token);
    await checkpoint();
    const head = (await s.sql<{ seq: number }>(`SELECT seq::int AS seq FROM audit_chain_head`))[0]!.seq;
    const from = head - 2;
    // Forge link `from`'s content, unlink it and every later link, and move the head back to
    // `from - 1`: the sealer then links them again with fresh, consistent hashes.
    await privileged(async (c) => {
      await c.query(`UPDATE audit_events SET after = '{"forged":true}' WHERE seq = $1`, [from]);
      await c.query(
        `UPDATE audit_events SET seq = NULL, prev_hash = NULL, hash = NULL, sealed_at = NULL WHERE seq >= $1`,
        [from],
      );
      await c.query(`UPDATE audit_chain_head SET seq = $1, hash = (SELECT hash FROM audit_events WHERE seq = $1)`, [
        from - 1,
      ]);
    });
    const v = await verify();
    // The rewritten links were re-linked (by verify's own sealing, or by the seal job first)...
    const relinked = await s.sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit_events WHERE seq BETWEEN $1 AND $2`,
      [from, head],
    );
    expect(relinked[0]!.n).toBe(3);
    expect(v.headSeq).toBe(head); // ...into a chain whose hashes all agree again,
    expect(v.ok).toBe(false); // ...but not with the signed checkpoint
    expect(v.firstBrokenSeq).toBe(head);
    expect(v.reason).toMatch(new RegExp(`link ${head} differs from the signed checkpoint`));
  });

  it('catches links cut off the end with the head moved back', async () => {
    const head = (await s.sql<{ seq: number }>(`SELECT seq::int AS seq FROM audit_chain_head`))[0]!.seq;
    await privileged(async (c) => {
      await c.query(`DELETE FROM audit_events WHERE seq > $1`, [head - 3]);
      await c.query(`UPDATE audit_chain_head SET seq = $1, hash = (SELECT hash FROM audit_events WHERE seq = $1)`, [
        head - 3,
      ]);
    });
    const v = await verify();
    expect(v.ok).toBe(false);
    expect(v.reason).toMatch(/signed checkpoint names link \d+: links were removed/);
  });
});
