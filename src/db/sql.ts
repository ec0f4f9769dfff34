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
  /**
   * A statement whose commit does not wait for its WAL to reach the disk
   * (synchronous_commit off, on connections of their own, opened when first used): for a
   * write whose loss in a database crash something durable already covers — a settled
   * call's record, whose sent reservation the expiry job would charge instead.
   */
  queryWithoutFlush<T = Record<string, unknown>>(q: Sql): Promise<T[]>;
  close(): Promise<void>;
}

export interface SqlClientOptions {
  /**
   * Named prepared statements kept per connection, least recently used first out
   * (DEALLOCATE). A statement's text follows the query's selection, so clients choosing
   * fields can make any number of distinct texts: unbounded, each would stay prepared in
   * every connection (server memory) for as long as the connection lives.
   */
  maxPreparedPerConnection?: number;
}

export const DEFAULT_MAX_PREPARED = 256;

/** pg's own records of what a connection has prepared (name → text); it skips Parse for names they hold. */
type Parsed = {
  connection: { parsedStatements: Record<string, string>; submittedNamedStatements?: Record<string, string> };
};

export function createSqlClient(url: string, max: number, opts: SqlClientOptions = {}): SqlClient {
  const maxPrepared = Math.max(1, opts.maxPreparedPerConnection ?? DEFAULT_MAX_PREPARED);
  const newPool = (options?: string) => {
    const p = new pg.Pool({
      connectionString: url,
      max,
      idleTimeoutMillis: 30_000,
      Client: statementBoundedClient(maxPrepared),
      ...(options ? { options } : {}),
    });
    // A connection the server ends (a restart, pg_terminate_backend, DROP DATABASE … FORCE) must
    // not crash the process: idle ones are reported on the pool, others on the client itself,
    // whose query in flight is rejected as usual. The pool replaces what it loses.
    p.on('error', () => {});
    p.on('connect', (client) => client.on('error', () => {}));
    return p;
  };
  const pool = newPool();
  let unflushed: pg.Pool | undefined;
  // Statement names by text, bounded too (a Map iterates oldest first): hashing again is cheaper than growing.
  const names = new Map<string, string>();
  const nameOf = (text: string) => {
    let name = names.get(text);
    if (!name) {
      name = 'stw_' + createHash('sha1').update(text).digest('hex').slice(0, 20);
      if (names.size >= maxPrepared * 4) names.delete(names.keys().next().value!);
      names.set(text, name);
    }
    return name;
  };
  const run = async <T>(on: pg.Pool, q: Sql): Promise<T[]> => {
    const text = q.text; // a getter that joins the statement's strings anew on every read
    const res = await on.query({ name: nameOf(text), text, values: q.values as unknown[] });
    return res.rows as T[];
  };
  const query = <T>(q: Sql) => run<T>(pool, q);
  return {
    pool,
    query,
    one: async <T>(q: Sql) => (await query<T>(q))[0],
    queryWithoutFlush: <T>(q: Sql) => run<T>((unflushed ??= newPool('-c synchronous_commit=off')), q),
    close: async () => {
      await Promise.all([pool.end(), unflushed?.end()]);
    },
  };
}

/**
 * A pg client that keeps at most `maxPrepared` named statements: before preparing one
 * more, it deallocates the one used least recently. The DEALLOCATE is queued ahead of
 * the query on the same connection; a pooled client runs one caller's queries at a time,
 * so no queued query still counts on the statement it drops.
 */
function statementBoundedClient(maxPrepared: number): typeof pg.Client {
  return class StatementBoundedClient extends pg.Client {
    /** Prepared names, least recently used first. */
    private readonly prepared = new Map<string, true>();

    override query(...args: any[]): any {
      const name = typeof args[0] === 'object' && args[0] !== null ? (args[0] as { name?: unknown }).name : undefined;
      if (typeof name === 'string') this.use(name);

      return (super.query as (...a: any[]) => any)(...args);
    }

    private use(name: string) {
      if (this.prepared.delete(name)) {
        this.prepared.set(name, true);
        return;
      }
      const { parsedStatements: parsed, submittedNamedStatements: submitted = {} } = (this as unknown as Parsed)
        .connection;
      while (this.prepared.size >= maxPrepared) {
        const oldest = this.prepared.keys().next().value!;
        this.prepared.delete(oldest);
        if (parsed[oldest] === undefined && submitted[oldest] === undefined) continue; // never prepared (its Parse failed)
        delete parsed[oldest];
        delete submitted[oldest];
        super.query(`DEALLOCATE ${oldest}`).catch(() => {});
      }
      this.prepared.set(name, true);
    }
  };
}
