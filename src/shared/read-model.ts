import { ReferenceKind, type EntityMetadata, type MetadataStorage } from '@mikro-orm/core';
import sql, { join, raw, type Sql } from 'sql-template-tag';

/**
 * What a read path needs to know of an entity's table: its name and, per property,
 * the column that holds it. Derived once from MikroORM's metadata, so entities stay
 * the single description of the schema. A many-to-one property reads as the
 * referenced id (a plain string), which `idOf` accepts as readily as an entity.
 */
export interface ReadModel {
  readonly name: string;
  readonly table: Sql;
  /** property name -> quoted column */
  readonly columns: ReadonlyMap<string, string>;
  /** field name -> SQL expression over the row aliased `t` (fields computed by PostgreSQL) */
  readonly expressions: ReadonlyMap<string, string>;
}

const computed = new Map<string, Record<string, string>>();

/**
 * Fields PostgreSQL computes for every row, selectable like columns when asked for:
 * `defineComputed(Task, { urgency: "CASE … t.due_date … END" })`. Expressions refer to
 * the row as `t`.
 */
export function defineComputed(entity: { name: string }, fields: Record<string, string>): void {
  computed.set(entity.name, { ...computed.get(entity.name), ...fields });
  models.delete(entity.name);
}

const models = new Map<string, ReadModel>();
let storage: MetadataStorage | undefined;

export function registerReadModels(metadata: MetadataStorage): void {
  storage = metadata;
  models.clear();
}

export function readModel(entity: string | { name: string }): ReadModel {
  const name = typeof entity === 'string' ? entity : entity.name;
  let model = models.get(name);
  if (!model) {
    if (!storage) throw new Error('read models are not registered: call registerReadModels(orm.getMetadata())');
    model = build(storage.get(name));
    models.set(name, model);
  }
  return model;
}

function build(meta: EntityMetadata): ReadModel {
  const columns = new Map<string, string>();
  for (const prop of meta.props) {
    if (prop.persist === false || prop.formula) continue;
    if (
      prop.kind === ReferenceKind.SCALAR ||
      prop.kind === ReferenceKind.EMBEDDED ||
      prop.kind === ReferenceKind.MANY_TO_ONE ||
      (prop.kind === ReferenceKind.ONE_TO_ONE && prop.owner)
    ) {
      if (prop.fieldNames?.length === 1) columns.set(prop.name, `"${prop.fieldNames[0]}"`);
    }
  }
  return {
    name: meta.className,
    table: raw(`"${meta.tableName}"`),
    columns,
    expressions: new Map(Object.entries(computed.get(meta.className) ?? {})),
  };
}

/**
 * The select list for the requested fields (unknown names, i.e. computed fields, are
 * skipped), always including `id` and any `required` properties, aliased to their
 * property names. `alias` qualifies the columns (`t."title" AS "title"`).
 */
export function selectList(
  model: ReadModel,
  fields: Iterable<string>,
  alias = '',
  required: readonly string[] = [],
): Sql {
  // Sorted: the same columns make the same statement text (one prepared statement, not one per field order).
  const wanted = [...new Set<string>(['id', ...required, ...fields])].sort();
  const prefix = alias ? `${alias}.` : '';
  const parts: string[] = [];
  for (const f of wanted) {
    const col = model.columns.get(f);
    if (col) parts.push(`${prefix}${col} AS "${f}"`);
    else if (model.expressions.has(f)) {
      if (alias !== 't') throw new Error(`${model.name}.${f} is computed over the alias t`);
      parts.push(`${model.expressions.get(f)} AS "${f}"`);
    }
  }
  return raw(parts.join(', '));
}

export function column(model: ReadModel, property: string, alias = ''): Sql {
  const col = model.columns.get(property);
  if (!col) throw new Error(`${model.name}.${property} has no column`);
  return raw(alias ? `${alias}.${col}` : col);
}

/** A reference as stored on a plain row (an id) or on a managed entity (an object). */
export function idOf(ref: string | { id: string } | null | undefined): string | null {
  if (ref == null) return null;
  return typeof ref === 'string' ? ref : ref.id;
}

/** `a AND b AND …`, or TRUE when there is nothing to filter by. */
export function and(conditions: ReadonlyArray<Sql | false | null | undefined>): Sql {
  const parts = conditions.filter((c): c is Sql => !!c);
  return parts.length ? join(parts, ' AND ') : sql`TRUE`;
}

/** `t.col ILIKE %text%` with the text's own % and _ taken literally. */
export function contains(column: string, text: string): Sql {
  return sql`${raw(column)} ILIKE ${`%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`}`;
}

/**
 * The type of a field resolver's root (`@Root() t: RowOf<Task>`): a plain row from a
 * loader, or the managed entity a mutation returned. Not the class itself on purpose:
 * given a class, type-graphql turns every root into a new instance of it, running the
 * entity's initialisers (a UUIDv7, dates, arrays) once per field resolved — measured at
 * ~20% of the dashboard query's CPU. A mapped type is reflected as a plain Object.
 */
export type RowOf<T> = Readonly<T>;
