import type { ServerResponse } from 'node:http';
import type pg from 'pg';
import type { Sql } from 'sql-template-tag';

/** Rows fetched per round trip while exporting. */
const BATCH = 500;

/**
 * Runs `statement` as a server-side cursor in a read-only transaction and hands its rows
 * over batch by batch: an export of millions of rows holds one batch in memory, never the
 * whole result. `onRows` awaits the client (backpressure); stops early, and rolls back,
 * when `aborted` turns true (the client went away).
 */
export async function streamRows<T>(
  pool: pg.Pool,
  statement: Sql,
  onRows: (rows: T[]) => Promise<void>,
  aborted: () => boolean,
): Promise<void> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('BEGIN READ ONLY');
    await client.query({
      text: `DECLARE steward_export NO SCROLL CURSOR FOR ${statement.text}`,
      values: statement.values as unknown[],
    });
    for (;;) {
      if (aborted()) break;
      const { rows } = await client.query<T & pg.QueryResultRow>(`FETCH ${BATCH} FROM steward_export`);
      if (rows.length) await onRows(rows);
      if (rows.length < BATCH) break;
    }
    await client.query('COMMIT');
  } catch (err) {
    broken = true;
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release(broken ? true : undefined);
  }
}

/** Writes `chunk`, waiting for the socket to drain when its buffer is full (or for it to close). */
export function writeChunk(res: ServerResponse, chunk: string): Promise<void> {
  if (res.write(chunk)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
