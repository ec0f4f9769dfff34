import type { GraphQLResolveInfo } from 'graphql';
import type { Sql } from 'sql-template-tag';

import { Project } from '../modules/projects/project.entity.js';
import { Approval } from '../modules/work/approval.entity.js';
import { Task } from '../modules/work/task.entity.js';
import { viewerOf, type Context } from '../server/context.js';
import { NotFoundError } from './errors.js';
import { readModel } from './read-model.js';
import { selectedFields } from './selection.js';

/**
 * Relations to the objects whose visibility depends on the viewer (projects, tasks,
 * approvals) load through these, never through a bare byId: a row the viewer reached
 * once (an approval they requested, a personal task they are assigned to) must not
 * open a path to a project or task they may no longer see, or to a deleted project.
 * test/e2e/relation-visibility.test.ts walks every relation of the schema to check it.
 */
type Row = Record<string, unknown> & { id: string };

/**
 * Rows a subscription delivers only to viewers its filter found allowed to read them
 * (a task event goes to those who may read the task, and so its project). Their own
 * project relation then needs no second, per-viewer check: the fan-out keeps executing
 * an event once for all who hear it instead of once per viewer.
 */
const checkedPerRecipient = new WeakSet<object>();

export function deliveredOnlyToReaders<T extends object | null>(row: T): T {
  if (row) checkedPerRecipient.add(row);
  return row;
}

export const isDeliveredOnlyToReaders = (row: object): boolean => checkedPerRecipient.has(row);

/**
 * One row by id through the request's DataLoader, only the selected columns, where `visible`
 * (SQL) lets the viewer see it. Callers build `visible` only for an id: reading the viewer for
 * a relation that points nowhere would make the fan-out execute an event once per viewer.
 */
function visibleById(ctx: Context, info: GraphQLResolveInfo, id: string, entity: Function, visible: Sql) {
  return ctx.loaders.byId<Row>(readModel(entity), selectedFields(info), visible).load(id);
}

export function visibleProject(
  ctx: Context,
  info: GraphQLResolveInfo,
  id: string | null | undefined,
): Promise<Row | null> | null {
  return id ? visibleById(ctx, info, id, Project, ctx.services.projects.policy.visible(viewerOf(ctx), 't.id')) : null;
}

export function visibleTask(
  ctx: Context,
  info: GraphQLResolveInfo,
  id: string | null | undefined,
): Promise<Row | null> | null {
  return id ? visibleById(ctx, info, id, Task, ctx.services.taskPolicy.visible(viewerOf(ctx), 't')) : null;
}

export function visibleApproval(
  ctx: Context,
  info: GraphQLResolveInfo,
  id: string | null | undefined,
): Promise<Row | null> | null {
  return id ? visibleById(ctx, info, id, Approval, ctx.services.approvals.visible(viewerOf(ctx))) : null;
}

/**
 * For a relation the schema declares non-null (its parent is only reachable through its
 * project): a row filtered out is refused as NOT_FOUND rather than leaked.
 */
export async function required<T>(
  row: Promise<T | null> | null,
  type: string,
  id: string | null | undefined,
): Promise<T> {
  const found = await row;
  if (!found) throw new NotFoundError(type, id ?? '');
  return found;
}
