import { randomFillSync } from 'node:crypto';
import { v7 } from 'uuid';

/** Random bytes drawn in blocks: one call into the system's generator serves 256 ids, not one. */
const pool = new Uint8Array(16 * 256);
let next = pool.length;
/** The last id's millisecond and counter, so that ids made in one millisecond still ascend. */
const last = { msecs: -Infinity, seq: 0 };

/**
 * New primary keys are UUIDv7: time-ordered, so b-tree inserts stay at the right edge
 * of the index and `ORDER BY id` is creation order, which keyset pagination uses. The
 * counter follows uuid's own rule (a random start each millisecond, +1 within it).
 */
export const newId = (): string => {
  if (next === pool.length) {
    randomFillSync(pool);
    next = 0;
  }
  const random = pool.subarray(next, (next += 16));
  const now = Date.now();
  if (now > last.msecs) {
    last.msecs = now;
    last.seq = ((random[6]! & 0x7f) << 24) | (random[7]! << 16) | (random[8]! << 8) | random[9]!;
  } else if ((last.seq = (last.seq + 1) | 0) === 0) last.msecs++;
  return v7({ random, msecs: last.msecs, seq: last.seq });
};
