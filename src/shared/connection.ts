import { Max, Min } from 'class-validator';
import sql, { raw, type Sql } from 'sql-template-tag';
import { ArgsType, Field, Int, ObjectType, type ClassType } from 'type-graphql';
import type { SqlClient } from '../db/sql.js';
import { BadInputError, isUuid } from './errors.js';
import { and, column, selectList, type ReadModel } from './read-model.js';

/** Largest page a client may ask for; larger `first`/`last` is BAD_USER_INPUT. */
export const MAX_PAGE = 100;
export const DEFAULT_PAGE = 20;

@ObjectType({ simpleResolvers: true })
export class PageInfo {
  @Field() hasNextPage!: boolean;
  @Field() hasPreviousPage!: boolean;
  @Field(() => String, { nullable: true }) startCursor!: string | null;
  @Field(() => String, { nullable: true }) endCursor!: string | null;
}

@ArgsType()
export class PageArgs {
  @Field(() => Int, { nullable: true, description: `At most ${MAX_PAGE}; ${DEFAULT_PAGE} by default.` })
  @Min(0)
  @Max(MAX_PAGE)
  first?: number | null;

  @Field(() => String, { nullable: true }) after?: string | null;

  @Field(() => Int, { nullable: true })
  @Min(0)
  @Max(MAX_PAGE)
  last?: number | null;

  @Field(() => String, { nullable: true }) before?: string | null;
}

export interface Connection<T> {
  edges: { cursor: string; node: T }[];
  pageInfo: PageInfo;
  /** Counted only when the client selects it (a getter, read by the default resolver). */
  readonly totalCount: Promise<number> | number;
}

/**
 * A Relay connection type for a node type: `XConnection { edges { cursor node } pageInfo totalCount }`.
 * Each node type gets exactly one connection class (cached), so modules may call this freely.
 */
export function ConnectionType<T extends object>(node: ClassType<T>, name = node.name): ClassType<Connection<T>> {
  const cached = connectionTypes.get(node);
  if (cached) return cached as ClassType<Connection<T>>;

  @ObjectType(`${name}Edge`, { simpleResolvers: true })
  class Edge {
    @Field() cursor!: string;
    @Field(() => node) node!: T;
  }

  @ObjectType(`${name}Connection`, { simpleResolvers: true })
  class Conn {
    @Field(() => [Edge]) edges!: Edge[];
    @Field(() => PageInfo) pageInfo!: PageInfo;
    // A promise (counted only when selected): it needs a resolver, which graphql-jit awaits, where a
    // simple field is read inline and its value serialised as is.
    @Field(() => Int, { simple: false }) totalCount!: number;
  }
  connectionTypes.set(node, Conn);
  return Conn as unknown as ClassType<Connection<T>>;
}
const connectionTypes = new Map<unknown, unknown>();

/** How a list is ordered: one property, then `id` in the same direction as the tie-breaker. */
export interface SortKey {
  property: string;
  direction: 'ASC' | 'DESC';
  /**
   * The SQL type of the property, to read a cursor's value back (`timestamptz`, `text`, `int`…).
   * A cursor's value is checked against uuid, timestamp, integer and number types before
   * use; any other type (an enum) is only known to be text, so a forged value fails in SQL.
   */
  type: string;
  /** For a nullable property: the SQL literal NULLs sort as (e.g. `'infinity'` to put them last ascending). */
  nulls?: string;
}

export const BY_ID: SortKey = { property: 'id', direction: 'ASC', type: 'uuid' };
export const NEWEST_FIRST: SortKey = { property: 'createdAt', direction: 'DESC', type: 'timestamptz' };

type CursorValue = string | number | boolean | null;

export function encodeCursor(values: CursorValue[]): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url');
}

/**
 * The values of a cursor of a list sorted by `sort`. A cursor is the client's to send
 * back, so each value is checked against its SQL type before it reaches a cast in SQL:
 * a garbled or forged cursor is BAD_USER_INPUT, not a failed query (a 500).
 */
export function decodeCursor(cursor: string, sort: SortKey): CursorValue[] {
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(v)) {
      if (
        sort.property === 'id'
          ? v.length === 1 && readableAs(v[0], 'uuid', false)
          : v.length === 2 && readableAs(v[0], sort.type, !!sort.nulls) && readableAs(v[1], 'uuid', false)
      ) {
        return v as CursorValue[];
      }
    }
  } catch {
    /* fall through */
  }
  throw BadInputError.field('cursor', 'is not a cursor of this list');
}

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$/;
const NUMBER = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/;
const INTEGER_BOUND: Record<string, bigint> = {
  smallint: 2n ** 15n,
  int: 2n ** 31n,
  integer: 2n ** 31n,
  bigint: 2n ** 63n,
};

/** Whether a cursor value can be cast to `type` (uuid, timestamps, integers and numbers are checked; other types are text). */
function readableAs(value: unknown, type: string, nullable: boolean): boolean {
  if (value === null) return nullable;
  if (typeof value !== 'string' && typeof value !== 'number') return false;
  const text = String(value);
  if (type === 'uuid') return isUuid(text);
  if (type === 'timestamptz' || type === 'timestamp' || type === 'date')
    return TIMESTAMP.test(text) || /^-?infinity$/.test(text);
  const bound = INTEGER_BOUND[type];
  if (bound) return /^-?\d{1,19}$/.test(text) && BigInt(text) >= -bound && BigInt(text) < bound;
  if (/^(numeric|decimal|real|double precision)\b/.test(type)) return NUMBER.test(text);
  return typeof value === 'string' && !text.includes('\u0000');
}

/** Where list queries put the sort key as PostgreSQL's own text of it (see sortKeySelect). */
const SORT_KEY = '__sortKey';

/**
 * The select-list entry that carries the sort key into cursors as PostgreSQL's text of
 * it (nothing when sorting by id). Cast back with `::type`, that text is exact, where a
 * timestamptz read through a JavaScript Date lost its microseconds: rows less than a
 * millisecond apart were then repeated (ascending) or skipped (descending) across pages.
 */
export function sortKeySelect(model: ReadModel, sort: SortKey, alias = ''): Sql {
  return sort.property === 'id' ? raw('') : sql`, ${column(model, sort.property, alias)}::text AS "${raw(SORT_KEY)}"`;
}

const plain = (v: unknown): CursorValue => (v instanceof Date ? v.toISOString() : (v as CursorValue));

export function cursorOf(row: Record<string, unknown>, sort: SortKey): string {
  if (sort.property === 'id') return encodeCursor([plain(row.id)]);
  return encodeCursor([plain(SORT_KEY in row ? row[SORT_KEY] : row[sort.property]), plain(row.id)]);
}

export interface PagePlan {
  /** Rows to fetch: the page size plus one, to know whether there is more. */
  limit: number;
  size: number;
  /** The ORDER BY direction used in SQL (reversed for `last`). */
  backwards: boolean;
  /** The keyset condition for `after` / `before`. */
  condition: Sql | null;
  orderBy: Sql;
}

/** The sort property as an SQL expression (NULLs replaced when the key is nullable). */
export function sortExpression(model: ReadModel, sort: SortKey, alias = ''): Sql {
  const col = column(model, sort.property, alias);
  return sort.nulls ? sql`coalesce(${col}, ${raw(sort.nulls)}::${raw(sort.type)})` : col;
}

/** Turns first/after/last/before into SQL pieces for one keyset-paginated list. */
export function planPage(model: ReadModel, page: PageArgs, sort: SortKey, alias = ''): PagePlan {
  if (page.first != null && page.last != null) throw new BadInputError('Pass either first or last, not both');
  const size = page.last ?? page.first ?? DEFAULT_PAGE;
  if (size < 0 || size > MAX_PAGE)
    throw BadInputError.field(page.last != null ? 'last' : 'first', `must be between 0 and ${MAX_PAGE}`);
  const backwards = page.last != null;
  const dir = (sort.direction === 'ASC') !== backwards ? 'ASC' : 'DESC';
  const key = sortExpression(model, sort, alias);
  const id = column(model, 'id', alias);

  const conditions: Sql[] = [];
  for (const [cursor, forward] of [
    [page.after, true],
    [page.before, false],
  ] as const) {
    if (!cursor) continue;
    const values = decodeCursor(cursor, sort);
    const greater = (sort.direction === 'ASC') === forward;
    const op = raw(greater ? '>' : '<');
    conditions.push(
      sort.property === 'id'
        ? sql`${id} ${op} ${values[0]}::uuid`
        : sql`(${key}, ${id}) ${op} (${sort.nulls ? sql`coalesce(${values[0]}::${raw(sort.type)}, ${raw(sort.nulls)}::${raw(sort.type)})` : sql`${values[0]}::${raw(sort.type)}`}, ${values[1]}::uuid)`,
    );
  }
  return {
    limit: size + 1,
    size,
    backwards,
    condition: conditions.length ? and(conditions) : null,
    orderBy:
      sort.property === 'id' ? sql`ORDER BY ${id} ${raw(dir)}` : sql`ORDER BY ${key} ${raw(dir)}, ${id} ${raw(dir)}`,
  };
}

/** An edge whose cursor is encoded when read: lists (nested ones above all) seldom ask for it. */
class Edge<T extends Record<string, unknown>> {
  constructor(
    readonly node: T,
    private readonly sort: SortKey,
  ) {}

  get cursor(): string {
    return cursorOf(this.node, this.sort);
  }
}

/** Builds the connection from the fetched rows (at most `limit`). */
export function toConnection<T extends Record<string, unknown>>(
  rows: T[],
  plan: PagePlan,
  sort: SortKey,
  page: PageArgs,
  count: () => Promise<number>,
): Connection<T> {
  const more = rows.length > plan.size;
  const nodes = more ? rows.slice(0, plan.size) : rows;
  if (plan.backwards) nodes.reverse();
  // The sort-key column stays on the row: no GraphQL field reads it, and `delete` would
  // turn every row object into a slow dictionary-mode object on the hot path.
  const edges = nodes.map((node) => new Edge(node, sort));
  let total: Promise<number> | undefined;
  return {
    edges,
    pageInfo: {
      hasNextPage: plan.backwards ? !!page.before : more,
      hasPreviousPage: plan.backwards ? more : !!page.after,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
    get totalCount() {
      return (total ??= count());
    },
  };
}

export interface ListQuery {
  model: ReadModel;
  /** GraphQL fields selected on the nodes (see selectedFields(info, ['edges', 'node'])). */
  fields: Iterable<string>;
  /** Extra properties the resolvers need besides the selected ones. */
  required?: readonly string[];
  /** Visibility and filters, on the table aliased `t`. */
  where: Sql;
  sort?: SortKey;
  /** Extra FROM clause pieces (joins on `t`). */
  joins?: Sql;
}

/** A root-level keyset-paginated list as a Relay connection, in one statement (+1 for totalCount when selected). */
export async function paginate<T extends Record<string, unknown>>(
  db: SqlClient,
  q: ListQuery,
  page: PageArgs,
): Promise<Connection<T>> {
  const sort = q.sort ?? NEWEST_FIRST;
  const plan = planPage(q.model, page, sort, 't');
  const required = sort.property === 'id' ? (q.required ?? []) : [...(q.required ?? []), sort.property];
  const joins = q.joins ?? raw('');
  const rows =
    plan.size === 0
      ? []
      : await db.query<T>(sql`SELECT ${selectList(q.model, q.fields, 't', required)}${sortKeySelect(q.model, sort, 't')} FROM ${q.model.table} t ${joins}
          WHERE ${and([q.where, plan.condition])} ${plan.orderBy} LIMIT ${plan.limit}`);
  return toConnection(rows, plan, sort, page, async () => {
    const r = await db.one<{ n: number }>(
      sql`SELECT count(*)::int AS n FROM ${q.model.table} t ${joins} WHERE ${q.where}`,
    );
    return r?.n ?? 0;
  });
}
