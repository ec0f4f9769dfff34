import { createHash } from 'node:crypto';
import type pg from 'pg';

import type { SqlClient } from '../../db/sql.js';
import type { Logger } from '../../shared/logger.js';
import type { Checkpoint, CheckpointRead } from './audit-checkpoints.js';
import { canonicalize } from './canonical.js';

/** The previous hash of the first link. */
export const GENESIS_HASH = '0'.repeat(64);

/** Links written per sealing transaction (a larger backlog takes several). */
const SEAL_BATCH = 2000;
/** Links read per round trip while verifying. */
const VERIFY_BATCH = 5000;

/**
 * An event's content as its hash covers it, read as PostgreSQL's exact text wherever a
 * JavaScript value would lose something (microseconds of a timestamp, an inet's mask).
 * jsonb values are parsed as JSON: canonical JSON makes their text independent of how
 * PostgreSQL happens to order or space it.
 */
export const CONTENT = `e.id::text AS id,
  to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS "createdAt",
  e.actor_id::text AS "actorId", e.actor_label AS "actorLabel", e.action, e.entity_type AS "entityType",
  e.entity_id AS "entityId", e.before, e.after, e.outcome, e.request_id AS "requestId", e.ip::text AS ip,
  e.user_agent AS "userAgent"`;

export interface EventContent {
  id: string;
  createdAt: string;
  actorId: string | null;
  actorLabel: string;
  action: string;
  entityType: string;
  entityId: string | null;
  before: unknown;
  after: unknown;
  outcome: string;
  requestId: string | null;
  ip: string | null;
  userAgent: string | null;
}

/** A link's hash: sha256 (hex) of the canonical JSON of the event's content, its place and the previous link's hash. */
export function linkHash(content: EventContent, seq: number, prevHash: string): string {
  return createHash('sha256')
    .update(canonicalize({ ...content, seq, prevHash }))
    .digest('hex');
}

export interface ChainVerification {
  ok: boolean;
  /** Links examined, from the first: all of them when the chain holds, up to the first broken one otherwise. */
  checked: number;
  firstBrokenId: string | null;
  firstBrokenSeq: number | null;
  /** Why the chain does not hold (null when it does). */
  reason: string | null;
  /** Events linked by this verification before it walked the chain. */
  sealed: number;
  /** Events committed after the walk started, not yet linked (the next seal links them). */
  pending: number;
  headSeq: number;
  headHash: string;
}

export interface AuditChainOptions {
  /** How long after a poke the sealer waits, to link what commits meanwhile in the same batch (ms; default 20). */
  delayMs?: number;
}

/**
 * ONE linear hash chain over all audit events, without serialising the writers:
 *
 * - writers insert events unlinked, in their own transactions, and never wait for
 *   each other or for the chain;
 * - the sealer links committed events: under a transaction-scoped advisory lock (one
 *   sealer at a time across every instance) it reads the head (audit_chain_head), takes
 *   the unlinked committed events in (created_at, id) order, gives each the next `seq`,
 *   the previous link's hash and its own hash = sha256(canonical JSON of content, seq,
 *   prevHash), and moves the head — one UPDATE of the events (the only change the
 *   append-only trigger lets through), one of the head, one commit;
 * - it runs moments after a commit that wrote events (`poke`, from the commit hook the
 *   AuditService registers), from a job for what no hook announced, and before every
 *   verification.
 *
 * The chain's order is the order of sealing, which for events committing within the
 * same few milliseconds may differ from their `createdAt` order: `seq` is the order.
 */
export class AuditChain {
  private timer?: NodeJS.Timeout;
  private running = false;
  private again = false;
  private readonly delayMs: number;

  constructor(
    private readonly db: SqlClient,
    private readonly logger: Logger,
    opts: AuditChainOptions = {},
  ) {
    this.delayMs = opts.delayMs ?? 20;
  }

  /**
   * Asks for a seal soon (after `delayMs`); calls meanwhile join it. Never throws; a
   * failed seal is logged and retried by the next poke or the `audit.seal` job.
   */
  poke(): void {
    if (this.db.pool.ending) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.runPoked();
    }, this.delayMs);
    this.timer.unref();
  }

  private async runPoked(): Promise<void> {
    if (this.db.pool.ending) return;
    this.running = true;
    this.again = false;
    try {
      await this.seal();
    } catch (err) {
      // Closing: the pool went away under the seal; the next start links what is left.
      if (!this.db.pool.ending)
        this.logger.warn(
          { err, module: 'audit' },
          'sealing audit events failed; the next commit or the audit.seal job retries',
        );
    } finally {
      this.running = false;
      if (this.again) {
        this.again = false;
        this.poke();
      }
    }
  }

  /**
   * Links every committed unlinked event; returns how many. Waits for a sealer of
   * another instance to finish first (it holds the lock only for one batch).
   */
  async seal(): Promise<number> {
    const client = await this.db.pool.connect();
    let total = 0;
    try {
      for (;;) {
        const n = await this.sealBatch(client);
        total += n;
        if (n < SEAL_BATCH) return total;
      }
    } finally {
      client.release();
    }
  }

  private async sealBatch(client: pg.PoolClient): Promise<number> {
    await client.query('BEGIN');
    try {
      await client.query(`SET LOCAL lock_timeout = '30s'`);
      await client.query(`SELECT pg_advisory_xact_lock(hashtext('steward:audit-seal'))`);
      const head = await readHead(client);
      const rows = (
        await client.query<EventContent>(
          `SELECT ${CONTENT} FROM audit_events e WHERE e.hash IS NULL ORDER BY e.created_at, e.id LIMIT ${SEAL_BATCH}`,
        )
      ).rows;
      if (rows.length === 0) {
        await client.query('COMMIT');
        return 0;
      }
      let seq = Number(head.seq);
      let prev = head.hash;
      const ids: string[] = [];
      const createdAts: string[] = [];
      const seqs: number[] = [];
      const prevs: string[] = [];
      const hashes: string[] = [];
      for (const row of rows) {
        seq += 1;
        const hash = linkHash(row, seq, prev);
        ids.push(row.id);
        createdAts.push(row.createdAt);
        seqs.push(seq);
        prevs.push(prev);
        hashes.push(hash);
        prev = hash;
      }
      const updated = await client.query(
        `UPDATE audit_events e SET seq = v.seq, prev_hash = v.prev_hash, hash = v.hash, sealed_at = now()
           FROM unnest($1::uuid[], $2::timestamptz[], $3::bigint[], $4::text[], $5::text[]) AS v(id, created_at, seq, prev_hash, hash)
          WHERE e.id = v.id AND e.created_at = v.created_at AND e.hash IS NULL`,
        [ids, createdAts, seqs, prevs, hashes],
      );
      if (updated.rowCount !== rows.length)
        throw new Error(`sealing linked ${updated.rowCount} of ${rows.length} audit events`);
      await client.query(`UPDATE audit_chain_head SET seq = $1, hash = $2, updated_at = now() WHERE id = 1`, [
        seq,
        prev,
      ]);
      await client.query('COMMIT');
      return rows.length;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
  }

  /**
   * Seals what is committed, then walks the chain from its first link in one snapshot:
   * each link must have the next seq, the previous link's hash, and the hash of its own
   * content; the last one must be the head. Stops at the first broken link and names it.
   * With `anchors` (signed checkpoints kept outside the database, ./audit-checkpoints.ts)
   * each checkpoint's link must still carry its signed hash, and the chain must reach
   * the last one: a chain rewritten and re-hashed from some link on, head included,
   * is caught there.
   */
  async verify(anchors?: CheckpointRead): Promise<ChainVerification> {
    const sealed = await this.seal();
    const client = await this.db.pool.connect();
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      try {
        const verification = await this.verifySnapshot(client, sealed, anchors);
        await client.query('COMMIT');
        return verification;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      }
    } finally {
      client.release();
    }
  }

  /** The verification itself, inside the snapshot `client` holds (see `verify`). */
  private async verifySnapshot(
    client: pg.PoolClient,
    sealed: number,
    anchors: CheckpointRead | undefined,
  ): Promise<ChainVerification> {
    const head = await readHead(client);
    const headSeq = Number(head.seq);
    const result = { sealed, headSeq, headHash: head.hash };
    if (anchors?.invalidLines.length) {
      const reason = `audit checkpoint line ${anchors.invalidLines[0]} does not carry a valid signature: the checkpoint file was altered`;
      return { ...failed({ id: null, seq: null, reason }, 0), pending: 0, ...result };
    }
    const walk = await this.walk(client, anchors?.valid ?? []);
    const lastSigned = anchors?.valid.reduce((max, c) => Math.max(max, c.seq), 0) ?? 0;
    const broken = walk.broken ?? endBreak(walk, headSeq, head.hash, lastSigned) ?? (await this.strayLink(client));
    const pending = Number(
      (await client.query<{ n: string }>(`SELECT count(*) AS n FROM audit_events WHERE hash IS NULL AND seq IS NULL`))
        .rows[0]!.n,
    );
    return broken
      ? { ...failed(broken, walk.checked), pending, ...result }
      : {
          ok: true,
          checked: walk.checked,
          firstBrokenId: null,
          firstBrokenSeq: null,
          reason: null,
          pending,
          ...result,
        };
  }

  /** Walks the linked events in seq order, batch by batch, up to the first link that does not hold. */
  private async walk(client: pg.PoolClient, checkpoints: readonly Checkpoint[]): Promise<ChainWalk> {
    const signed = new Map(checkpoints.map((c) => [c.seq, c]));
    let expected = 1;
    let prev = GENESIS_HASH;
    let checked = 0;
    let after: [number, string] = [0, '00000000-0000-0000-0000-000000000000'];
    const stop = (id: string, seq: number, reason: string): ChainWalk => ({
      checked,
      lastSeq: expected - 1,
      lastHash: prev,
      broken: { id, seq, reason },
    });
    for (;;) {
      const rows = (
        await client.query<EventContent & { seq: string; prev_hash: string | null; hash: string | null }>(
          `SELECT ${CONTENT}, e.seq, e.prev_hash, e.hash FROM audit_events e
            WHERE e.seq IS NOT NULL AND (e.seq, e.id) > ($1::bigint, $2::uuid) ORDER BY e.seq, e.id LIMIT ${VERIFY_BATCH}`,
          after,
        )
      ).rows;
      for (const row of rows) {
        const { seq: seqText, prev_hash: prevHash, hash, ...content } = row;
        const seq = Number(seqText);
        checked += 1;
        if (seq !== expected) return stop(content.id, seq, misplaced(seq, expected));
        if (prevHash !== prev) return stop(content.id, seq, `link ${seq} does not follow the hash of link ${seq - 1}`);
        if (hash !== linkHash(content, seq, prev))
          return stop(content.id, seq, `link ${seq} does not match its hash: its content was changed`);
        const anchor = signed.get(seq);
        if (anchor && anchor.hash !== hash)
          return stop(
            content.id,
            seq,
            `link ${seq} differs from the signed checkpoint of ${anchor.at}: the chain was rewritten up to it`,
          );
        prev = hash;
        expected += 1;
        after = [seq, content.id];
      }
      if (rows.length < VERIFY_BATCH) return { checked, lastSeq: expected - 1, lastHash: prev, broken: null };
    }
  }

  /** An event that carries a hash but no seq (no place in the chain), if there is one. */
  private async strayLink(client: pg.PoolClient): Promise<ChainBreak | null> {
    const stray = (
      await client.query<{ id: string }>(
        `SELECT id::text AS id FROM audit_events WHERE seq IS NULL AND hash IS NOT NULL LIMIT 1`,
      )
    ).rows[0];
    return stray ? { id: stray.id, seq: null, reason: 'an event carries a hash but no place in the chain' } : null;
  }
}

/** Where and why the chain does not hold. */
interface ChainBreak {
  id: string | null;
  seq: number | null;
  reason: string;
}

/** How far a walk of the chain got: links examined, the last link that holds, and the first that does not. */
interface ChainWalk {
  checked: number;
  lastSeq: number;
  lastHash: string;
  broken: ChainBreak | null;
}

/** The chain's head, read in the caller's transaction. */
async function readHead(client: pg.PoolClient): Promise<{ seq: string; hash: string }> {
  const head = (
    await client.query<{ seq: string; hash: string }>(`SELECT seq, hash FROM audit_chain_head WHERE id = 1`)
  ).rows[0];
  if (!head) throw new Error('audit_chain_head has no row: the audit migration did not run');
  return head;
}

/** A failed verification's outcome, before the count of pending events. */
function failed(
  broken: ChainBreak,
  checked: number,
): Omit<ChainVerification, 'pending' | 'sealed' | 'headSeq' | 'headHash'> {
  return { ok: false, checked, firstBrokenId: broken.id, firstBrokenSeq: broken.seq, reason: broken.reason };
}

/** Why a link at `seq` is not the `expected` one: a link repeated, or links missing before it. */
function misplaced(seq: number, expected: number): string {
  if (seq < expected) return `link ${seq} appears twice`;
  return seq === expected + 1 ? `link ${expected} is missing` : `links ${expected} to ${seq - 1} are missing`;
}

/**
 * Where a chain whose links all hold still breaks: it does not end at its head (links removed from its end, or
 * a last link the head does not match), or it stops before the last signed checkpoint (links removed, head moved back).
 */
function endBreak(walk: ChainWalk, headSeq: number, headHash: string, lastSigned: number): ChainBreak | null {
  const last = walk.lastSeq;
  if (last !== headSeq || walk.lastHash !== headHash)
    return last < headSeq
      ? {
          id: null,
          seq: last + 1,
          reason: `the chain ends at link ${last} but its head is link ${headSeq}: links were removed from its end`,
        }
      : { id: null, seq: headSeq + 1, reason: `the chain does not end at its head (link ${headSeq})` };
  if (lastSigned > last)
    return {
      id: null,
      seq: last + 1,
      reason: `the chain ends at link ${last} but a signed checkpoint names link ${lastSigned}: links were removed`,
    };
  return null;
}
