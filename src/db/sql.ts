import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Sql } from 'sql-template-tag';

/**
 * The read path's connection pool: plain rows, `$n` parameters and named prepared
 * statements (parsed and planned once per connection). Writes go through MikroORM's
 * unit of work instead; reads that return many rows come here to skip hydration.
 */
export interface SqlClient {
  readonly pool: pg.Pool;
  query<T = Record<string, unknown>>(q: Sql): Promise<T[]>;
  one<T = Record<string, unknown>>(q: Sql): Promise<T | undefined>;
  close(): Promise<void>;
}

export function createSqlClient(url: string, max: number): SqlClient {
  const pool = new pg.Pool({ connectionString: url, max, idleTimeoutMillis: 30_000 });
  // A connection the server ends (a restart, pg_terminate_backend, DROP DATABASE … FORCE) must
  // not crash the process: idle ones are reported on the pool, others on the client itself,
  // whose query in flight is rejected as usual. The pool replaces what it loses.
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  const names = new Map<string, string>();
  const nameOf = (text: string) => {
    let name = names.get(text);
    if (!name) {
      name = 'stw_' + createHash('sha1').update(text).digest('hex').slice(0, 20);
      names.set(text, name);
    }
    return name;
  };
  const query = async <T>(q: Sql): Promise<T[]> => {
    const res = await pool.query({ name: nameOf(q.text), text: q.text, values: q.values as unknown[] });
    return res.rows as T[];
  };
  return {
    pool,
    query,
    one: async <T>(q: Sql) => (await query<T>(q))[0],
    close: () => pool.end(),
  };
}
