import type { GraphQLResolveInfo } from 'graphql';
import sql from 'sql-template-tag';
import {
  Arg,
  Args,
  Ctx,
  FieldResolver,
  ID,
  Info,
  Int,
  Mutation,
  Query,
  Resolver,
  Root,
  Subscription,
} from 'type-graphql';
import { viewerOf, type Context } from '../../server/context.js';
import { Viewer } from '../../server/viewer.js';
import { Allow } from '../../shared/allow.js';
import { ConnectionType, PageArgs } from '../../shared/connection.js';
import { BadInputError, isUuid, requireUuid } from '../../shared/errors.js';
import { idOf, readModel, type RowOf } from '../../shared/read-model.js';
import { selectedFields } from '../../shared/selection.js';
import {
  deliveredOnlyToReaders,
  isDeliveredOnlyToReaders,
  visibleProject,
  visibleTask,
} from '../../shared/visibility.js';
import { AgentType } from '../ai/agent.entity.js';
import { User } from '../identity/user.entity.js';
import { Project } from '../projects/project.entity.js';
import { Approval } from './approval.entity.js';
import { TASK_DELETED, TASK_UPDATED, type TaskEvent } from './task.events.js';
import {
  AssignAgentInput,
  AssignTaskInput,
  CreateTaskInput,
  DailyActivity,
  TaskDependencyInput,
  TaskOrder,
  TaskWhere,
  UpdateTaskInput,
  UpdateTaskStatusInput,
} from './task.inputs.js';
import { Task, TaskUrgency } from './task.entity.js';
import { onTopic } from '../../server/subscribe.js';

export const TaskConnection = ConnectionType(Task);

type Row = Record<string, unknown> & { id: string };
const tasks = () => readModel(Task);

/**
 * A field PostgreSQL computes (see defineComputed in task.service.ts): on list rows already
 * (answered as is, no promise per row), loaded for entities.
 */
function computed<T>(ctx: Context, root: Task, field: string): T | Promise<T> {
  if (field in root) return (root as unknown as Record<string, T>)[field]!;
  return ctx.loaders
    .byId<Row>(tasks(), [field])
    .load(root.id)
    .then((row) => row?.[field] as T);
}

@Resolver(() => Task)
@Allow('SIGNED_IN')
export class TaskResolver {
  @Query(() => Task, { nullable: true, description: 'A task you may see (null otherwise).' })
  task(
    @Arg('id', () => ID) id: string,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    if (!isUuid(id)) return null;
    return ctx.loaders
      .byId(tasks(), selectedFields(info), ctx.services.taskPolicy.visible(viewer, 't'))
      .load(id.toLowerCase());
  }

  @Query(() => TaskConnection, { description: 'Tasks you may see, filtered and ordered (newest first by default).' })
  tasks(
    @Args() page: PageArgs,
    @Arg('where', () => TaskWhere, { nullable: true }) where: TaskWhere | null,
    @Arg('orderBy', () => TaskOrder, { nullable: true }) orderBy: TaskOrder | null,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.services.tasks.list(viewer, selectedFields(info, ['edges', 'node']), where, orderBy, page);
  }

  @Query(() => [DailyActivity], {
    description: 'Per UTC day and kind, the last `days` days of the tasks and approvals you may see.',
  })
  dailyActivity(
    @Arg('projectId', () => ID, { nullable: true }) projectId: string | null,
    @Arg('days', () => Int, { defaultValue: 30 }) days: number,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
  ) {
    if (days < 1 || days > 366) throw BadInputError.field('days', 'must be between 1 and 366');
    return ctx.services.tasks.dailyActivity(viewer, projectId ? requireUuid(projectId, 'projectId') : null, days);
  }

  @FieldResolver(() => Project, { nullable: true })
  project(@Root() t: RowOf<Task>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    if (isDeliveredOnlyToReaders(t)) return ctx.loaders.relation(t.project, readModel(Project), selectedFields(info));
    return visibleProject(ctx, info, idOf(t.project));
  }

  @FieldResolver(() => User)
  createdBy(@Root() t: RowOf<Task>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders.byId(readModel(User), selectedFields(info)).load(idOf(t.createdBy)!);
  }

  @FieldResolver(() => Task, { nullable: true, description: 'Null when there is none, or you may not see it.' })
  parent(@Root() t: RowOf<Task>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return visibleTask(ctx, info, idOf(t.parent));
  }

  @FieldResolver(() => [Task], { description: 'Those you may see.' })
  subtasks(@Root() t: RowOf<Task>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders
      .byForeignKey(tasks(), 'parent', selectedFields(info), {
        where: ctx.services.taskPolicy.visible(viewerOf(ctx), 't'),
      })
      .load(t.id);
  }

  @FieldResolver(() => [User], { description: 'Users actively assigned.' })
  assignees(@Root() t: RowOf<Task>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders
      .manyToMany(
        readModel(User),
        { table: sql`task_assignees`, from: 'task_id', to: 'user_id', where: sql`p.active` },
        selectedFields(info),
      )
      .load(t.id);
  }

  @FieldResolver(() => [Task], { description: 'Tasks that must complete before this one starts (those you may see).' })
  dependencies(@Root() t: RowOf<Task>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders
      .manyToMany(
        tasks(),
        {
          table: sql`task_dependencies`,
          from: 'task_id',
          to: 'depends_on_id',
          where: ctx.services.taskPolicy.visible(viewerOf(ctx), 't'),
        },
        selectedFields(info),
      )
      .load(t.id);
  }

  @FieldResolver(() => [Approval], { description: 'Oldest first.' })
  approvals(@Root() t: RowOf<Task>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders.byForeignKey(readModel(Approval), 'task', selectedFields(info)).load(t.id);
  }

  @FieldResolver(() => TaskUrgency, {
    description: 'OVERDUE, DUE_SOON (within a day) or ON_TRACK; closed tasks are ON_TRACK.',
  })
  urgency(@Root() t: RowOf<Task>, @Ctx() ctx: Context) {
    return computed<TaskUrgency>(ctx, t, 'urgency');
  }

  @FieldResolver(() => Int, { description: 'Approvals ever requested for the task.' })
  approvalCount(@Root() t: RowOf<Task>, @Ctx() ctx: Context) {
    return computed<number>(ctx, t, 'approvalCount');
  }

  @Mutation(() => Task, {
    description: 'CONTRIBUTOR or higher in the project; without a project the task is personal.',
  })
  createTask(@Arg('input') input: CreateTaskInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.tasks.create(ctx, viewer, input);
  }

  @Mutation(() => Task)
  updateTask(@Arg('input') input: UpdateTaskInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.tasks.update(ctx, viewer, input);
  }

  @Mutation(() => Boolean, {
    description:
      'The creator, or MAINTAINER and higher. The task is soft-deleted: it keeps its approvals and history, and an admin may restore it (deletedTasks, restoreTask).',
  })
  deleteTask(@Arg('id', () => ID) id: string, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.tasks.delete(ctx, viewer, id);
  }

  @Allow('ADMIN')
  @Query(() => TaskConnection, { description: 'Deleted tasks, most recently deleted first (admins).' })
  deletedTasks(
    @Args() page: PageArgs,
    @Arg('projectId', () => ID, { nullable: true }) projectId: string | null,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.services.tasks.deleted(
      selectedFields(info, ['edges', 'node']),
      projectId ? requireUuid(projectId, 'projectId') : null,
      page,
    );
  }

  @Allow('ADMIN')
  @Mutation(() => Task, { description: 'Brings a deleted task back, with its approvals and history (admins).' })
  restoreTask(@Arg('id', () => ID) id: string, @Ctx() ctx: Context) {
    return ctx.services.tasks.restore(ctx, id);
  }

  @Allow('SIGNED_IN', 'SERVICE')
  @Mutation(() => Task, {
    description:
      'PENDING → ASSIGNED → IN_PROGRESS → COMPLETED | FAILED; open → CANCELLED. Starts only when dependencies are COMPLETED.',
  })
  updateTaskStatus(@Arg('input') input: UpdateTaskStatusInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.tasks.setStatus(ctx, viewer, input.taskId, input.status);
  }

  @Mutation(() => Task, {
    description: 'The assignee must be a member of the project; assigning twice changes nothing.',
  })
  assignTask(@Arg('input') input: AssignTaskInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.tasks.assign(ctx, viewer, input.taskId, input.userId);
  }

  @Mutation(() => Task)
  unassignTask(@Arg('input') input: AssignTaskInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.tasks.unassign(ctx, viewer, input.taskId, input.userId);
  }

  @Allow('SIGNED_IN', 'SERVICE')
  @Mutation(() => Task)
  assignAgent(@Arg('input') input: AssignAgentInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.tasks.assignAgent(ctx, viewer, input.taskId, input.agent, !!input.primary);
  }

  @Allow('SIGNED_IN', 'SERVICE')
  @Mutation(() => Task)
  unassignAgent(
    @Arg('taskId', () => ID) taskId: string,
    @Arg('agent', () => AgentType) agent: AgentType,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
  ) {
    return ctx.services.tasks.unassignAgent(ctx, viewer, taskId, agent);
  }

  @Mutation(() => Task, { description: 'Refused when it would create a cycle.' })
  addTaskDependency(@Arg('input') input: TaskDependencyInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.tasks.addDependency(ctx, viewer, input.taskId, input.dependsOnId);
  }

  @Mutation(() => Task)
  removeTaskDependency(@Arg('input') input: TaskDependencyInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.tasks.removeDependency(ctx, viewer, input.taskId, input.dependsOnId);
  }

  @Subscription(() => Task, {
    description: 'Tasks created or changed, in one project or in every task you may see.',
    subscribe: onTopic<TaskEvent>(
      TASK_UPDATED,
      ({ ctx, args }) =>
        async (e, viewer, scope) =>
          (!args.projectId || e.projectId === args.projectId) &&
          (await ctx.services.taskPolicy.access(viewer, e.taskId, scope)) !== null,
    ),
  })
  async taskUpdated(
    @Root() e: TaskEvent,
    @Arg('projectId', () => ID, { nullable: true }) _projectId: string | null,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return deliveredOnlyToReaders(await ctx.loaders.byId(tasks(), selectedFields(info)).load(e.taskId));
  }

  @Subscription(() => ID, {
    description: 'Ids of deleted tasks, in projects you are a member of.',
    subscribe: onTopic<TaskEvent>(
      TASK_DELETED,
      ({ ctx, args }) =>
        async (e, viewer, scope) =>
          (!args.projectId || e.projectId === args.projectId) &&
          !!e.projectId &&
          (await ctx.services.projects.policy.canRead(viewer, e.projectId, scope)),
    ),
  })
  taskDeleted(@Root() e: TaskEvent, @Arg('projectId', () => ID, { nullable: true }) _projectId: string | null) {
    return e.taskId;
  }
}

/** Project.tasks lives with the tasks: the projects module knows nothing of work. */
@Resolver(() => Project)
@Allow('SIGNED_IN')
export class ProjectTasksResolver {
  @FieldResolver(() => TaskConnection)
  tasks(
    @Root() p: RowOf<Project>,
    @Args() page: PageArgs,
    @Arg('where', () => TaskWhere, { nullable: true }) where: TaskWhere | null,
    @Arg('orderBy', () => TaskOrder, { nullable: true }) orderBy: TaskOrder | null,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    const filter = ctx.services.tasks.filter(viewerOf(ctx), { ...where, projectId: null });
    return ctx.loaders
      .pagePerParent(tasks(), 'project', selectedFields(info, ['edges', 'node']), page, {
        where: filter,
        sort: ctx.services.tasks.sort(orderBy),
      })
      .load(p.id);
  }
}
