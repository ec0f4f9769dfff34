import DataLoader from 'dataloader';
import sql, { raw, type Sql } from 'sql-template-tag';

import type { SqlClient } from '../db/sql.js';
import {
  BY_ID,
  planPage,
  sortExpression,
  sortKeySelect,
  toConnection,
  type Connection,
  type PageArgs,
  type SortKey,
} from './connection.js';
import { and, column, idOf, selectList, type ReadModel } from './read-model.js';
import { isSelection } from './selection.js';

type Row = Record<string, unknown>;

/**
 * The most rows a plain (unpaginated) nested list returns per parent, in its order: the
 * rest is reachable through the root connections. The cost estimate counts such a list
 * at this size (src/server/limits.ts), so a query's cost bounds what it can read.
 */
export const NESTED_LIST_CAP = 100;

const PARENT = '__parent';
const TRUE = sql`TRUE`;
/** Where `memo` keeps the loader built for a list of arguments. */
const BUILT = Symbol('built');
type Memo = Map<unknown, Memo | DataLoader<unknown, unknown>>;

/**
 * Per-request DataLoader factories for the read path. Each loader sends ONE statement
 * per batch with `= ANY($1)` (one prepared plan whatever the number of keys, where an
 * `IN ($1, …, $800)` list is planned anew per length), selects only the columns the
 * operation asked for, and returns plain rows (no entity hydration: it cost ~100 ms of
 * CPU per dashboard request when measured). Loaders are cached per request by their
 * shape (table, columns, filter), so the same relation at the same depth batches
 * across all parents: SQL statements grow with the depth of a query, not with its rows.
 */
export class Loaders {
  private readonly cache = new Map<string, DataLoader<unknown, unknown>>();
  private readonly memoized: Memo = new Map();

  constructor(private readonly db: SqlClient) {}

  /**
   * The loader `build` makes for these arguments, built once per request. A list's item
   * resolvers ask for their loader once per row with the very same arguments (the
   * `fields` object selectedFields answers for the field, the model, constant strings):
   * building its select list and shape key every time was ~15% of the dashboard query's
   * CPU (profiled). Arguments compare by identity (strings by value): the methods below
   * pass only those that stay the same from row to row (`fieldsKey`, no filter made per
   * call); `build` still finds loaders by shape.
   */
  private memo<L extends DataLoader<never, unknown>>(build: () => L, ...args: unknown[]): L {
    let level = this.memoized;
    for (const arg of args) {
      let next = level.get(arg) as Memo | undefined;
      if (!next) level.set(arg, (next = new Map()));
      level = next;
    }
    let loader = level.get(BUILT) as L | undefined;
    if (!loader) level.set(BUILT, (loader = build()) as unknown as DataLoader<unknown, unknown>);
    return loader;
  }

  /** A loader of any shape, cached under `key` for this request. */
  custom<K, V>(key: string, batch: (keys: readonly K[]) => Promise<V[]>): DataLoader<K, V> {
    let loader = this.cache.get(key) as DataLoader<K, V> | undefined;
    if (!loader) {
      // No batch cap: `= ANY($1)` takes any number of keys in one parameter, and splitting a
      // level into several statements would make their count grow with the rows.
      loader = new DataLoader<K, V>(batch);
      this.cache.set(key, loader as DataLoader<unknown, unknown>);
    }
    return loader;
  }

  /** Rows by primary key (null when missing or filtered out by `where`). */
  byId<T extends Row>(model: ReadModel, fields: Iterable<string>, where?: Sql): DataLoader<string, T | null> {
    if (where) return this.buildById(model, fields, where);
    return this.memo(() => this.buildById<T>(model, fields, TRUE), 'id', model, fieldsKey(fields));
  }

  /**
   * The row a nullable relation points at (a foreign key column, or a reference `{ id }`):
   * null when it points nowhere, else `byId`'s answer.
   */
  relation<T extends Row>(
    ref: string | { id: string } | null | undefined,
    model: ReadModel,
    fields: Iterable<string>,
    where?: Sql,
  ): Promise<T | null> | null {
    const id = idOf(ref);
    return id ? this.byId<T>(model, fields, where).load(id) : null;
  }

  private buildById<T extends Row>(
    model: ReadModel,
    fields: Iterable<string>,
    filter: Sql,
  ): DataLoader<string, T | null> {
    const select = selectList(model, fields, 't');
    return this.custom(key('id', model, select, filter), async (ids: readonly string[]) => {
      const rows = await this.db.query<T>(
        sql`SELECT ${select} FROM ${model.table} t WHERE t."id" = ANY(${ids}::uuid[]) AND ${filter}`,
      );
      const byId = new Map(rows.map((r) => [r.id as string, r]));
      return ids.map((id) => byId.get(id) ?? null);
    });
  }

  /**
   * The rows whose foreign key `fk` (a property of `model`) is the key, ordered, at most
   * NESTED_LIST_CAP per key (one LATERAL statement for all keys).
   * `required`: properties the resolver reads besides the selected fields.
   */
  byForeignKey<T extends Row>(
    model: ReadModel,
    fk: string,
    fields: Iterable<string>,
    opts: { where?: Sql; sort?: SortKey; required?: readonly string[] } = {},
  ): DataLoader<string, T[]> {
    const sort = opts.sort ?? BY_ID;
    const required = opts.required ?? [];
    if (opts.where) return this.buildByForeignKey(model, fk, fields, opts.where, sort, required);
    return this.memo(
      () => this.buildByForeignKey<T>(model, fk, fields, TRUE, sort, required),
      'fk',
      model,
      fk,
      fieldsKey(fields),
      sort.property,
      sort.direction,
      sort.type,
      sort.nulls,
      required.join(),
    );
  }

  private buildByForeignKey<T extends Row>(
    model: ReadModel,
    fk: string,
    fields: Iterable<string>,
    filter: Sql,
    sort: SortKey,
    required: readonly string[],
  ): DataLoader<string, T[]> {
    const select = selectList(model, fields, 't', required);
    const fkCol = column(model, fk, 't');
    const order = orderOf(model, sort);
    return this.custom(key('fk', model, select, filter, fk, order), async (parents: readonly string[]) => {
      const rows = await this.db.query<T & { [PARENT]: string }>(
        sql`SELECT x.* FROM unnest(${parents}::uuid[]) AS k(id) CROSS JOIN LATERAL (
              SELECT ${select}, ${fkCol} AS "${raw(PARENT)}" FROM ${model.table} t
              WHERE ${fkCol} = k.id AND ${filter} ${order} LIMIT ${raw(String(NESTED_LIST_CAP))}) x`,
      );
      return group(parents, rows);
    });
  }

  /**
   * Rows reached through a pivot table: `pivot.from = key`, `pivot.to = model.id`, at most
   * NESTED_LIST_CAP per key.
   * `pivotWhere` filters the pivot (aliased `p`), e.g. `p."active"`.
   */
  manyToMany<T extends Row>(
    model: ReadModel,
    pivot: { table: Sql; from: string; to: string; where?: Sql },
    fields: Iterable<string>,
  ): DataLoader<string, T[]> {
    // The pivot's pieces are usually written inline (new objects per call): compared by their text.
    if (pivot.table.values.length || pivot.where?.values.length) return this.buildManyToMany(model, pivot, fields);
    return this.memo(
      () => this.buildManyToMany<T>(model, pivot, fields),
      'm2m',
      model,
      fieldsKey(fields),
      pivot.table.text,
      pivot.from,
      pivot.to,
      pivot.where?.text,
    );
  }

  private buildManyToMany<T extends Row>(
    model: ReadModel,
    pivot: { table: Sql; from: string; to: string; where?: Sql },
    fields: Iterable<string>,
  ): DataLoader<string, T[]> {
    const select = selectList(model, fields, 't');
    const filter = pivot.where ?? TRUE;
    const from = raw(`p."${pivot.from}"`);
    const to = raw(`p."${pivot.to}"`);
    return this.custom(
      key('m2m', model, select, filter, pivot.table.text, pivot.from, pivot.to),
      async (parents: readonly string[]) => {
        const rows = await this.db.query<T & { [PARENT]: string }>(
          sql`SELECT x.* FROM unnest(${parents}::uuid[]) AS k(id) CROSS JOIN LATERAL (
              SELECT ${select}, ${from} AS "${raw(PARENT)}" FROM ${pivot.table} p JOIN ${model.table} t ON t."id" = ${to}
              WHERE ${from} = k.id AND ${filter} ORDER BY t."id" LIMIT ${raw(String(NESTED_LIST_CAP))}) x`,
        );
        return group(parents, rows);
      },
    );
  }

  /**
   * A nested connection: the first N rows per parent (keyset-paginated), for all
   * parents in one statement through a LATERAL join; totalCount per parent in one
   * grouped count, only when selected.
   */
  pagePerParent<T extends Row>(
    model: ReadModel,
    fk: string,
    fields: Iterable<string>,
    page: PageArgs,
    opts: { where?: Sql; sort?: SortKey } = {},
  ): DataLoader<string, Connection<T>> {
    const sort = opts.sort ?? BY_ID;
    const plan = planPage(model, page, sort, 't');
    const required = sort.property === 'id' ? [] : [sort.property];
    const select = selectList(model, fields, 't', required);
    const fkCol = column(model, fk, 't');
    const filter = opts.where ?? TRUE;
    const cacheKey = key('page', model, select, filter, fk, plan.orderBy, plan.condition ?? sql``, String(plan.limit));
    return this.custom(cacheKey, async (parents: readonly string[]) => {
      const rows =
        plan.size === 0
          ? []
          : await this.db.query<T & { [PARENT]: string }>(
              sql`SELECT x.* FROM unnest(${parents}::uuid[]) AS p(id) CROSS JOIN LATERAL (
                    SELECT ${select}${sortKeySelect(model, sort, 't')}, ${fkCol} AS "${raw(PARENT)}" FROM ${model.table} t
                    WHERE ${fkCol} = p.id AND ${and([filter, plan.condition])} ${plan.orderBy} LIMIT ${plan.limit}) x`,
            );
      const counts = this.custom(`${cacheKey}:count`, async (ids: readonly string[]) => {
        const r = await this.db.query<{ parent: string; n: number }>(
          sql`SELECT ${fkCol} AS parent, count(*)::int AS n FROM ${model.table} t
              WHERE ${fkCol} = ANY(${ids}::uuid[]) AND ${filter} GROUP BY 1`,
        );
        const m = new Map(r.map((x) => [x.parent, x.n]));
        return ids.map((id) => m.get(id) ?? 0);
      });
      return group(parents, rows).map((list, i) =>
        toConnection(list, plan, sort, page, () => counts.load(parents[i]!)),
      );
    });
  }
}

/** `fields` as a memo key: selectedFields's answers by identity (they never change), any other list by its names. */
function fieldsKey(fields: Iterable<string>): unknown {
  return isSelection(fields) ? fields : Array.from(fields).join();
}

function orderOf(model: ReadModel, sort: SortKey): Sql {
  const dir = raw(sort.direction);
  return sort.property === 'id'
    ? sql`ORDER BY t."id" ${dir}`
    : sql`ORDER BY ${sortExpression(model, sort, 't')} ${dir}, t."id" ${dir}`;
}

function group<T extends Row>(parents: readonly string[], rows: (T & { [PARENT]: string })[]): T[][] {
  const byParent = new Map<string, T[]>();
  for (const r of rows) {
    const list = byParent.get(r[PARENT]);
    if (list) list.push(r);
    else byParent.set(r[PARENT], [r]);
  }
  return parents.map((p) => byParent.get(p) ?? []);
}

function key(kind: string, model: ReadModel, ...parts: (Sql | string)[]): string {
  return [
    kind,
    model.name,
    ...parts.map((p) => (typeof p === 'string' ? p : `${p.text}|${JSON.stringify(p.values)}`)),
  ].join('\u0000');
}
