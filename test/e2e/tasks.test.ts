import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  AddProjectMemberDocument,
  AddTaskDependencyDocument,
  ApproveApprovalDocument,
  AssignAgentDocument,
  AssignTaskDocument,
  CreateProjectDocument,
  CreateServiceTokenDocument,
  CreateTaskDocument,
  DailyActivityDocument,
  DeleteTaskDocument,
  ProjectTasksDocument,
  RemoveTaskDependencyDocument,
  RequestApprovalDocument,
  TaskDeletedDocument,
  TaskDocument,
  TasksDocument,
  TaskUpdatedDocument,
  UnassignTaskDocument,
  UpdateTaskDocument,
  UpdateTaskStatusDocument,
  type CreateTaskInput,
  type ProjectRole,
  type TaskOrder,
  type TaskStatus,
  type TaskWhere,
} from '../generated/graphql.js';
import { codes, gql, ok, subscribe, wsClient } from '../support/client.js';
import { sentinel } from '../support/sentinel.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, unique, type TestUser } from '../support/users.js';
import { busListeners } from '../support/wait.js';

/** Service tokens must expire. */
const SOON = new Date(Date.now() + 24 * 3600_000).toISOString();

let s: TestServer;
let admin: TestUser;
beforeAll(async () => {
  s = await startTestServer();
  admin = await firstAdmin(s);
});
afterAll(() => s?.close());

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const at = (offsetMs: number) => new Date(Date.now() + offsetMs).toISOString();

const user = () => createUser(s, admin, 'USER');
const newProject = async (owner: TestUser) =>
  (await ok(s.url, CreateProjectDocument, { input: { name: unique('project-') } }, owner.token)).createProject;
/** A project owned by a fresh user, with members of the given roles. */
async function team(...roles: ProjectRole[]) {
  const owner = await user();
  const project = await newProject(owner);
  const members: TestUser[] = [];
  for (const role of roles) {
    const m = await user();
    await ok(s.url, AddProjectMemberDocument, { input: { projectId: project.id, userId: m.id, role } }, owner.token);
    members.push(m);
  }
  return { owner, project, members };
}
const newTask = async (by: TestUser, input: Partial<CreateTaskInput>) =>
  (await ok(s.url, CreateTaskDocument, { input: { title: unique('task-'), ...input } }, by.token)).createTask;
const setStatus = (by: TestUser, taskId: string, status: TaskStatus) =>
  gql(s.url, UpdateTaskStatusDocument, { input: { taskId, status } }, by.token);
const moveTo = async (by: TestUser, taskId: string, status: TaskStatus) =>
  (await ok(s.url, UpdateTaskStatusDocument, { input: { taskId, status } }, by.token)).updateTaskStatus;
const assign = (by: TestUser, taskId: string, userId: string) =>
  gql(s.url, AssignTaskDocument, { input: { taskId, userId } }, by.token);
const taskOf = async (viewer: TestUser, id: string) => (await ok(s.url, TaskDocument, { id }, viewer.token)).task;
/** A task of `project` moved along the status machine to `status` (assigned to `by` on the way). */
async function taskIn(by: TestUser, projectId: string, status: TaskStatus, input: Partial<CreateTaskInput> = {}) {
  const t = await newTask(by, { projectId, ...input });
  if (status === 'PENDING') return t;
  if (status === 'CANCELLED') return moveTo(by, t.id, 'CANCELLED');
  await ok(s.url, AssignTaskDocument, { input: { taskId: t.id, userId: by.id } }, by.token);
  if (status === 'ASSIGNED') return taskOf(by, t.id).then((x) => x!);
  await moveTo(by, t.id, 'IN_PROGRESS');
  if (status === 'IN_PROGRESS') return taskOf(by, t.id).then((x) => x!);
  return moveTo(by, t.id, status);
}
const ids = (c: { edges: { node: { id: string } }[] }) => c.edges.map((e) => e.node.id);
const listIds = async (viewer: TestUser, where: TaskWhere, orderBy?: TaskOrder) =>
  ids((await ok(s.url, TasksDocument, { first: 100, where, orderBy }, viewer.token)).tasks).sort();

describe('the task status machine', () => {
  it('moves PENDING → ASSIGNED → IN_PROGRESS → COMPLETED, and the server sets the times', async () => {
    const {
      owner,
      project,
      members: [dev],
    } = await team('CONTRIBUTOR');
    const task = await newTask(owner, { projectId: project.id, estimatedMinutes: 120 });
    expect(task).toMatchObject({
      status: 'PENDING',
      priority: 'MEDIUM',
      startedAt: null,
      completedAt: null,
      actualMinutes: null,
      executionTimeSeconds: null,
    });

    expect(codes(await setStatus(owner, task.id, 'ASSIGNED'))).toEqual(['BAD_USER_INPUT']); // nobody to assign it to yet
    const assigned = (await assign(owner, task.id, dev!.id)).data!.assignTask;
    expect(assigned).toMatchObject({ status: 'ASSIGNED', assignees: [{ id: dev!.id }] });

    const started = await moveTo(dev!, task.id, 'IN_PROGRESS');
    expect(started.status).toBe('IN_PROGRESS');
    expect(Math.abs(Date.parse(started.startedAt!) - Date.now())).toBeLessThan(60_000);
    expect(started.completedAt).toBeNull();

    // Work went on for 90 minutes.
    await s.sql(`UPDATE tasks SET started_at = now() - interval '90 minutes' WHERE id = $1`, [task.id]);
    const done = await moveTo(dev!, task.id, 'COMPLETED');
    expect(done).toMatchObject({ status: 'COMPLETED', actualMinutes: 90, estimatedMinutes: 120 });
    expect(done.executionTimeSeconds).toBeGreaterThanOrEqual(5400);
    expect(done.executionTimeSeconds).toBeLessThan(5460);
    expect(Math.abs(Date.parse(done.completedAt!) - Date.now())).toBeLessThan(60_000);
  });

  it.each<[TaskStatus, TaskStatus]>([
    ['PENDING', 'IN_PROGRESS'],
    ['PENDING', 'COMPLETED'],
    ['PENDING', 'FAILED'],
    ['ASSIGNED', 'COMPLETED'],
    ['ASSIGNED', 'FAILED'],
    ['ASSIGNED', 'PENDING'],
    ['IN_PROGRESS', 'ASSIGNED'],
    ['IN_PROGRESS', 'PENDING'],
  ])('refuses %s → %s with BAD_USER_INPUT', async (from, to) => {
    const { owner, project } = await team();
    const task = await taskIn(owner, project.id, from);
    expect(codes(await setStatus(owner, task.id, to))).toEqual(['BAD_USER_INPUT']);
    expect((await taskOf(owner, task.id))?.status).toBe(from);
  });

  it('cancels any open task, and a closed task is final', async () => {
    const { owner, project } = await team();
    for (const open of ['PENDING', 'ASSIGNED', 'IN_PROGRESS'] as const) {
      const task = await taskIn(owner, project.id, open);
      const cancelled = await moveTo(owner, task.id, 'CANCELLED');
      expect(cancelled.status).toBe('CANCELLED');
      expect(cancelled.completedAt).toBeTruthy();
    }
    for (const closed of ['COMPLETED', 'FAILED', 'CANCELLED'] as const) {
      const task = await taskIn(owner, project.id, closed);
      expect(task.status).toBe(closed);
      for (const next of ['PENDING', 'ASSIGNED', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED'] as const) {
        if (next === closed) continue;
        expect(codes(await setStatus(owner, task.id, next)), `${closed} → ${next}`).toEqual(['BAD_USER_INPUT']);
      }
      expect(codes(await assign(owner, task.id, owner.id))).toEqual(['CONFLICT']); // no new assignees either
    }
  });
});

describe('dependencies, subtasks and estimates', () => {
  it('does not start a task while a dependency is not COMPLETED', async () => {
    const { owner, project } = await team();
    const schema = await newTask(owner, { projectId: project.id, title: 'Design the schema' });
    const api = await newTask(owner, { projectId: project.id, title: 'Build the API', dependsOn: [schema.id] });
    expect(api.dependencies).toEqual([{ id: schema.id }]);
    await ok(s.url, AssignTaskDocument, { input: { taskId: api.id, userId: owner.id } }, owner.token);

    const blocked = await setStatus(owner, api.id, 'IN_PROGRESS');
    expect(codes(blocked)).toEqual(['BAD_USER_INPUT']);
    expect(blocked.errors![0]!.message).toContain('Design the schema');

    await ok(s.url, AssignTaskDocument, { input: { taskId: schema.id, userId: owner.id } }, owner.token);
    await moveTo(owner, schema.id, 'IN_PROGRESS');
    expect(codes(await setStatus(owner, api.id, 'IN_PROGRESS'))).toEqual(['BAD_USER_INPUT']); // started is not completed
    await moveTo(owner, schema.id, 'COMPLETED');
    expect((await moveTo(owner, api.id, 'IN_PROGRESS')).status).toBe('IN_PROGRESS');
  });

  it('refuses a cycle: with A → B → C, C → A is refused', async () => {
    const { owner, project } = await team();
    const [a, b, c] = [
      await newTask(owner, { projectId: project.id }),
      await newTask(owner, { projectId: project.id }),
      await newTask(owner, { projectId: project.id }),
    ];
    const depend = (taskId: string, dependsOnId: string) =>
      gql(s.url, AddTaskDependencyDocument, { input: { taskId, dependsOnId } }, owner.token);

    expect((await depend(a!.id, b!.id)).data?.addTaskDependency.dependencies).toEqual([{ id: b!.id }]);
    expect((await depend(b!.id, c!.id)).errors).toBeUndefined();
    expect(codes(await depend(c!.id, a!.id))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await depend(c!.id, b!.id))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await depend(a!.id, a!.id))).toEqual(['BAD_USER_INPUT']);
    expect(await s.sql('SELECT count(*)::int AS n FROM task_dependencies WHERE task_id = $1', [c!.id])).toEqual([
      { n: 0 },
    ]);

    // A dependency on another project's task is refused too.
    const elsewhere = await newTask(owner, { projectId: (await newProject(owner)).id });
    expect(codes(await depend(a!.id, elsewhere.id))).toEqual(['BAD_USER_INPUT']);

    // Once B no longer depends on C, C may depend on A.
    await ok(s.url, RemoveTaskDependencyDocument, { input: { taskId: b!.id, dependsOnId: c!.id } }, owner.token);
    expect((await depend(c!.id, a!.id)).data?.addTaskDependency.dependencies).toEqual([{ id: a!.id }]);
  });

  it('refuses the cycle two concurrent additions would close together: exactly one of A → B and B → A succeeds', async () => {
    const { owner, project } = await team();
    for (let round = 0; round < 3; round++) {
      const a = await newTask(owner, { projectId: project.id });
      const b = await newTask(owner, { projectId: project.id });
      const [ab, ba] = await Promise.all([
        gql(s.url, AddTaskDependencyDocument, { input: { taskId: a.id, dependsOnId: b.id } }, owner.token),
        gql(s.url, AddTaskDependencyDocument, { input: { taskId: b.id, dependsOnId: a.id } }, owner.token),
      ]);
      expect([codes(ab)[0] ?? 'OK', codes(ba)[0] ?? 'OK'].sort()).toEqual(['BAD_USER_INPUT', 'OK']);
      expect(
        await s.sql('SELECT count(*)::int AS n FROM task_dependencies WHERE task_id IN ($1, $2)', [a.id, b.id]),
      ).toEqual([{ n: 1 }]);
    }
  });

  it('refuses a dependency on a personal task one cannot see', async () => {
    const [alice, bob] = await Promise.all([user(), user()]);
    const secret = await newTask(alice, { title: "Alice's private errand" });
    const mine = await newTask(bob, {});
    expect(
      codes(await gql(s.url, CreateTaskDocument, { input: { title: 'Peek', dependsOn: [secret.id] } }, bob.token)),
    ).toEqual(['BAD_USER_INPUT']);
    expect(
      codes(
        await gql(s.url, AddTaskDependencyDocument, { input: { taskId: mine.id, dependsOnId: secret.id } }, bob.token),
      ),
    ).toEqual(['BAD_USER_INPUT']);
    expect(await taskOf(bob, secret.id)).toBeNull();
    // Between one's own personal tasks it works.
    const next = await newTask(bob, { dependsOn: [mine.id] });
    expect(next.dependencies).toEqual([{ id: mine.id }]);
  });

  it('makes subtasks through parentId, in the same project only', async () => {
    const { owner, project } = await team();
    const parent = await newTask(owner, { projectId: project.id, title: 'Release 1.0' });
    const child1 = await newTask(owner, { projectId: project.id, parentId: parent.id });
    const child2 = await newTask(owner, { projectId: project.id, parentId: parent.id });
    expect(child1.parent).toEqual({ id: parent.id });
    expect((await taskOf(owner, parent.id))!.subtasks.map((t) => t.id).sort()).toEqual([child1.id, child2.id].sort());
    expect(await listIds(owner, { parentId: parent.id })).toEqual([child1.id, child2.id].sort());

    const other = await newProject(owner);
    expect(
      codes(
        await gql(
          s.url,
          CreateTaskDocument,
          { input: { title: 'Stray', projectId: other.id, parentId: parent.id } },
          owner.token,
        ),
      ),
    ).toEqual(['BAD_USER_INPUT']);
  });

  it('refuses a CRITICAL task estimated at more than 1440 minutes', async () => {
    const { owner, project } = await team();
    const create = (estimatedMinutes: number) =>
      gql(
        s.url,
        CreateTaskDocument,
        { input: { title: 'Hotfix', projectId: project.id, priority: 'CRITICAL', estimatedMinutes } },
        owner.token,
      );
    expect(codes(await create(1441))).toEqual(['BAD_USER_INPUT']);
    expect((await create(1440)).data?.createTask).toMatchObject({ priority: 'CRITICAL', estimatedMinutes: 1440 });

    const long = await newTask(owner, { projectId: project.id, priority: 'HIGH', estimatedMinutes: 3000 });
    expect(
      codes(await gql(s.url, UpdateTaskDocument, { input: { id: long.id, priority: 'CRITICAL' } }, owner.token)),
    ).toEqual(['BAD_USER_INPUT']);
    expect((await taskOf(owner, long.id))?.priority).toBe('HIGH');
  });

  it('applies concurrent changes to one task one after the other, losing none', async () => {
    const { owner, project } = await team();
    const task = await newTask(owner, { projectId: project.id });
    const due = at(2 * DAY);
    const changes = [
      { title: 'Concurrent' },
      { description: 'Changed at once' },
      { priority: 'HIGH' as const },
      { tags: ['x', 'y'] },
      { estimatedMinutes: 45 },
      { dueDate: due },
    ];
    const results = await Promise.all(
      changes.map((c) => gql(s.url, UpdateTaskDocument, { input: { id: task.id, ...c } }, owner.token)),
    );
    expect(results.map((r) => codes(r))).toEqual(changes.map(() => []));
    expect(await taskOf(owner, task.id)).toMatchObject({
      title: 'Concurrent',
      description: 'Changed at once',
      priority: 'HIGH',
      tags: ['x', 'y'],
      estimatedMinutes: 45,
      dueDate: due,
    });
  });

  it("updates a task's fields and lets only its creator or a maintainer delete it", async () => {
    const {
      owner,
      project,
      members: [maintainer, dev, other],
    } = await team('MAINTAINER', 'CONTRIBUTOR', 'CONTRIBUTOR');
    const task = await newTask(dev!, { projectId: project.id, tags: ['api'] });
    const updated = (
      await ok(
        s.url,
        UpdateTaskDocument,
        { input: { id: task.id, title: 'Renamed', tags: ['api', 'v2'], dueDate: at(DAY * 3) } },
        other!.token,
      )
    ).updateTask;
    expect(updated).toMatchObject({ title: 'Renamed', tags: ['api', 'v2'] });

    expect(codes(await gql(s.url, DeleteTaskDocument, { id: task.id }, other!.token))).toEqual(['FORBIDDEN']);
    expect((await gql(s.url, DeleteTaskDocument, { id: task.id }, dev!.token)).data?.deleteTask).toBe(true);
    const second = await newTask(dev!, { projectId: project.id });
    expect((await gql(s.url, DeleteTaskDocument, { id: second.id }, maintainer!.token)).data?.deleteTask).toBe(true);
    expect(await taskOf(owner, task.id)).toBeNull();
  });
});

describe('the tasks connection', () => {
  /** One project with tasks that differ in every filtered property, and a task elsewhere. */
  async function board() {
    const {
      owner,
      project,
      members: [dev, other],
    } = await team('CONTRIBUTOR', 'CONTRIBUTOR');
    const make = (input: Partial<CreateTaskInput>) => newTask(owner, { projectId: project.id, ...input });
    const ci = await make({
      title: 'Set up continuous integration',
      priority: 'HIGH',
      tags: ['ci'],
      dueDate: at(-2 * DAY),
    });
    const docs = await make({ title: 'Write the user guide', priority: 'LOW', tags: ['docs'], dueDate: at(12 * HOUR) });
    const schema = await make({
      title: 'Plan the storage upgrade',
      description: 'We are migrating the database to PostgreSQL 17 next week.',
      tags: ['db', 'ops'],
      dueDate: at(10 * DAY),
    });
    const login = await make({ title: 'Fix the login form', priority: 'CRITICAL', tags: ['bug'] });
    const shipped = await make({ title: 'Ship the beta', priority: 'HIGH', tags: ['ops'], dueDate: at(-3 * DAY) });
    await assign(owner, schema.id, dev!.id);
    await assign(owner, login.id, dev!.id);
    await assign(owner, shipped.id, other!.id);
    await moveTo(owner, shipped.id, 'IN_PROGRESS');
    await moveTo(owner, shipped.id, 'COMPLETED');
    const outside = await newTask(owner, { projectId: (await newProject(owner)).id, title: 'Elsewhere', tags: ['ci'] });
    return { owner, project, dev: dev!, other: other!, ci, docs, schema, login, shipped, outside };
  }

  it('filters by project, status, priority, assignee and tag', async () => {
    const b = await board();
    const all = [b.ci, b.docs, b.schema, b.login, b.shipped].map((t) => t.id).sort();
    const sorted = (...ts: { id: string }[]) => ts.map((t) => t.id).sort();
    expect(await listIds(b.owner, { projectId: b.project.id })).toEqual(all);
    expect(await listIds(b.owner, { projectId: b.project.id, status: ['ASSIGNED'] })).toEqual(
      sorted(b.schema, b.login),
    );
    expect(await listIds(b.owner, { projectId: b.project.id, status: ['PENDING', 'COMPLETED'] })).toEqual(
      sorted(b.ci, b.docs, b.shipped),
    );
    expect(await listIds(b.owner, { projectId: b.project.id, priority: ['HIGH', 'CRITICAL'] })).toEqual(
      sorted(b.ci, b.login, b.shipped),
    );
    expect(await listIds(b.owner, { projectId: b.project.id, assigneeId: b.dev.id })).toEqual(
      sorted(b.schema, b.login),
    );
    expect(await listIds(b.owner, { projectId: b.project.id, tag: 'ops' })).toEqual(sorted(b.schema, b.shipped));
    expect(await listIds(b.owner, { tag: 'ci' })).toEqual(sorted(b.ci, b.outside));
    expect(
      await listIds(b.owner, { projectId: b.project.id, tag: 'ops', status: ['COMPLETED'], assigneeId: b.other.id }),
    ).toEqual(sorted(b.shipped));
    // Project.tasks takes the same filters.
    const viaProject = (await ok(s.url, ProjectTasksDocument, { id: b.project.id, where: { tag: 'ops' } }, b.dev.token))
      .project!.tasks;
    expect(ids(viaProject).sort()).toEqual(sorted(b.schema, b.shipped));
    expect(viaProject.totalCount).toBe(2);
  });

  it('filters by due date range and overdue (open and past due)', async () => {
    const b = await board();
    const sorted = (...ts: { id: string }[]) => ts.map((t) => t.id).sort();
    const p = b.project.id;
    expect(await listIds(b.owner, { projectId: p, dueBefore: at(0) })).toEqual(sorted(b.ci, b.shipped));
    expect(await listIds(b.owner, { projectId: p, dueAfter: at(0) })).toEqual(sorted(b.docs, b.schema));
    expect(await listIds(b.owner, { projectId: p, dueAfter: at(0), dueBefore: at(2 * DAY) })).toEqual(sorted(b.docs));
    expect(await listIds(b.owner, { projectId: p, overdue: true })).toEqual(sorted(b.ci));
    expect(await listIds(b.owner, { projectId: p, overdue: false })).toEqual(
      sorted(b.docs, b.schema, b.login, b.shipped),
    );
  });

  it('finds tasks by full-text search over title and description, with English stemming', async () => {
    const b = await board();
    expect(await listIds(b.owner, { projectId: b.project.id, search: 'database migration' })).toEqual([b.schema.id]);
    expect(await listIds(b.owner, { projectId: b.project.id, search: 'integrating' })).toEqual([b.ci.id]);
    expect(await listIds(b.owner, { projectId: b.project.id, search: 'guides' })).toEqual([b.docs.id]);
    expect(await listIds(b.owner, { projectId: b.project.id, search: 'login -form' })).toEqual([]);
    expect(await listIds(b.owner, { projectId: b.project.id, search: 'kubernetes' })).toEqual([]);
    // Search never widens visibility.
    expect(await listIds(await user(), { search: 'database migration' })).toEqual([]);
  });

  it('computes urgency (OVERDUE, DUE_SOON, ON_TRACK) and the approval count', async () => {
    const b = await board();
    await ok(s.url, RequestApprovalDocument, { input: { taskId: b.schema.id, actionType: 'migrate' } }, b.dev.token);
    await ok(s.url, RequestApprovalDocument, { input: { taskId: b.schema.id, actionType: 'backup' } }, b.dev.token);
    const { tasks } = await ok(s.url, TasksDocument, { first: 10, where: { projectId: b.project.id } }, b.owner.token);
    const byId = Object.fromEntries(tasks.edges.map((e) => [e.node.id, e.node]));
    expect(byId[b.ci.id]).toMatchObject({ urgency: 'OVERDUE', approvalCount: 0 });
    expect(byId[b.docs.id]).toMatchObject({ urgency: 'DUE_SOON' });
    expect(byId[b.schema.id]).toMatchObject({ urgency: 'ON_TRACK', approvalCount: 2 });
    expect(byId[b.login.id]).toMatchObject({ urgency: 'ON_TRACK' }); // no due date
    expect(byId[b.shipped.id]).toMatchObject({ urgency: 'ON_TRACK' }); // past due but closed
    // The same computed fields on a single task.
    expect(await taskOf(b.owner, b.schema.id)).toMatchObject({ urgency: 'ON_TRACK', approvalCount: 2 });
    expect(await taskOf(b.owner, b.ci.id)).toMatchObject({ urgency: 'OVERDUE', approvalCount: 0 });
  });

  it('orders by DUE_DATE and PRIORITY, paging through without duplicates or gaps', async () => {
    const { owner, project } = await team();
    const priorities = ['LOW', 'CRITICAL', 'HIGH', 'MEDIUM', 'HIGH', 'LOW', 'HIGH', 'CRITICAL', 'MEDIUM'] as const;
    const dues = [
      at(5 * DAY),
      null,
      at(1 * DAY),
      at(5 * DAY),
      null,
      at(-1 * DAY),
      at(1 * DAY),
      at(3 * DAY),
      at(5 * DAY),
    ];
    const created = [];
    for (let i = 0; i < priorities.length; i++)
      created.push(await newTask(owner, { projectId: project.id, priority: priorities[i], dueDate: dues[i] }));

    async function pages(orderBy: TaskOrder) {
      const seen: string[] = [];
      let after: string | null | undefined;
      for (let n = 0; n < 10; n++) {
        const { tasks } = await ok(
          s.url,
          TasksDocument,
          { first: 2, after, where: { projectId: project.id }, orderBy },
          owner.token,
        );
        seen.push(...ids(tasks));
        expect(tasks.totalCount).toBe(priorities.length);
        if (!tasks.pageInfo.hasNextPage) return seen;
        after = tasks.pageInfo.endCursor;
      }
      throw new Error('too many pages');
    }
    const rank = { LOW: 0, MEDIUM: 1, HIGH: 2, CRITICAL: 3 };
    const byDue = [...created].sort(
      (x, y) => Date.parse(x.dueDate ?? '9999-12-31') - Date.parse(y.dueDate ?? '9999-12-31') || (x.id < y.id ? -1 : 1),
    );
    const byPriority = [...created].sort((x, y) => rank[y.priority] - rank[x.priority] || (x.id < y.id ? 1 : -1));

    expect(await pages({ field: 'DUE_DATE', direction: 'ASC' })).toEqual(byDue.map((t) => t.id)); // no due date: last
    expect(await pages({ field: 'PRIORITY', direction: 'DESC' })).toEqual(byPriority.map((t) => t.id));
    expect(await pages({ field: 'PRIORITY', direction: 'ASC' })).toEqual([...byPriority].reverse().map((t) => t.id));
  });

  it('counts daily activity per kind for the tasks one may see', async () => {
    const {
      owner,
      project,
      members: [maintainer],
    } = await team('MAINTAINER');
    await taskIn(owner, project.id, 'PENDING');
    await taskIn(owner, project.id, 'COMPLETED');
    await taskIn(owner, project.id, 'FAILED');
    const old = await taskIn(owner, project.id, 'PENDING');
    await s.sql(`UPDATE tasks SET created_at = now() - interval '40 days' WHERE id = $1`, [old.id]);
    const approval = (
      await ok(s.url, RequestApprovalDocument, { input: { taskId: old.id, actionType: 'deploy' } }, owner.token)
    ).requestApproval;
    await ok(s.url, ApproveApprovalDocument, { input: { id: approval.id } }, maintainer!.token);

    const today = new Date().toISOString().slice(0, 10);
    const activity = async (viewer: TestUser, days = 30) =>
      (await ok(s.url, DailyActivityDocument, { projectId: project.id, days }, viewer.token)).dailyActivity;
    const todays = Object.fromEntries(
      (await activity(owner)).filter((a) => a.day === today).map((a) => [a.kind, a.count]),
    );
    expect(todays).toEqual({
      TASK_CREATED: 3,
      TASK_COMPLETED: 1,
      TASK_FAILED: 1,
      APPROVAL_REQUESTED: 1,
      APPROVAL_DECIDED: 1,
    });
    expect(
      (await activity(owner)).every((a) => a.day >= new Date(Date.now() - 31 * DAY).toISOString().slice(0, 10)),
    ).toBe(true);
    const longer = await activity(owner, 60);
    expect(longer.filter((a) => a.kind === 'TASK_CREATED').reduce((n, a) => n + a.count, 0)).toBe(4);
    expect(await activity(await user())).toEqual([]);
    expect(codes(await gql(s.url, DailyActivityDocument, { projectId: project.id, days: 0 }, owner.token))).toEqual([
      'BAD_USER_INPUT',
    ]);
  });
});

describe('assignments', () => {
  it('assigns once when the same assignment races: one assignee row and one notification', async () => {
    const {
      owner,
      project,
      members: [dev],
    } = await team('CONTRIBUTOR');
    for (let round = 0; round < 3; round++) {
      const task = await newTask(owner, { projectId: project.id });
      const [r1, r2] = await Promise.all([assign(owner, task.id, dev!.id), assign(owner, task.id, dev!.id)]);
      expect([codes(r1), codes(r2)]).toEqual([[], []]);
      expect(r1.data!.assignTask).toMatchObject({ status: 'ASSIGNED', assignees: [{ id: dev!.id }] });
      expect(r2.data!.assignTask).toMatchObject({ status: 'ASSIGNED', assignees: [{ id: dev!.id }] });

      expect(
        await s.sql('SELECT user_id, active, assigned_by_id FROM task_assignees WHERE task_id = $1', [task.id]),
      ).toEqual([{ user_id: dev!.id, active: true, assigned_by_id: owner.id }]);
      expect(
        await s.sql(`SELECT count(*)::int AS n FROM notifications WHERE user_id = $1 AND data->>'taskId' = $2`, [
          dev!.id,
          task.id,
        ]),
      ).toEqual([{ n: 1 }]);
      expect(
        await s.sql(`SELECT count(*)::int AS n FROM audit_events WHERE action = 'task.assign' AND entity_id = $1`, [
          task.id,
        ]),
      ).toEqual([{ n: 1 }]);
    }
  });

  it('refuses an assignee who is not a member of the project', async () => {
    const {
      owner,
      project,
      members: [viewer],
    } = await team('VIEWER');
    const task = await newTask(owner, { projectId: project.id });
    const outsider = await user();
    expect(codes(await assign(owner, task.id, outsider.id))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await assign(viewer!, task.id, viewer!.id))).toEqual(['FORBIDDEN']); // a VIEWER assigns no one
    expect(codes(await assign(outsider, task.id, outsider.id))).toEqual(['NOT_FOUND']);
    expect((await assign(owner, task.id, viewer!.id)).data?.assignTask.assignees).toEqual([{ id: viewer!.id }]); // any member may be assigned
  });

  it('moves a task back to PENDING when its last assignee goes, and to ASSIGNED when an agent takes it', async () => {
    const {
      owner,
      project,
      members: [dev],
    } = await team('CONTRIBUTOR');
    const task = await newTask(owner, { projectId: project.id });
    await assign(owner, task.id, dev!.id);
    const unassigned = (
      await ok(s.url, UnassignTaskDocument, { input: { taskId: task.id, userId: dev!.id } }, owner.token)
    ).unassignTask;
    expect(unassigned).toMatchObject({ status: 'PENDING', assignees: [] });
    const withAgent = (
      await ok(s.url, AssignAgentDocument, { input: { taskId: task.id, agent: 'SENIOR_ENGINEER' } }, owner.token)
    ).assignAgent;
    expect(withAgent).toMatchObject({
      status: 'ASSIGNED',
      assignedAgents: ['SENIOR_ENGINEER'],
      primaryAgent: 'SENIOR_ENGINEER',
    });
    // Reassigning the same user reactivates its row (one row per task and user).
    await assign(owner, task.id, dev!.id);
    expect(
      await s.sql('SELECT count(*)::int AS n FROM task_assignees WHERE task_id = $1 AND active', [task.id]),
    ).toEqual([{ n: 1 }]);
  });
});

describe('agents and jobs', () => {
  it("lets an agent's service token take a task and report its progress, reading the answer's relations", async () => {
    const { owner, project } = await team();
    const token = (
      await ok(
        s.url,
        CreateServiceTokenDocument,
        {
          input: {
            name: unique('agent-'),
            serviceActor: 'agent:senior-engineer',
            expiresAt: SOON,
            scopes: ['read', 'write'],
          },
        },
        admin.token,
      )
    ).createServiceToken.token;
    const task = await newTask(owner, { projectId: project.id });
    const taken = (
      await ok(
        s.url,
        AssignAgentDocument,
        { input: { taskId: task.id, agent: 'SENIOR_ENGINEER', primary: true } },
        token,
      )
    ).assignAgent;
    expect(taken).toMatchObject({
      status: 'ASSIGNED',
      primaryAgent: 'SENIOR_ENGINEER',
      project: { id: project.id },
      createdBy: { id: owner.id },
      assignees: [],
    });
    await ok(s.url, UpdateTaskStatusDocument, { input: { taskId: task.id, status: 'IN_PROGRESS' } }, token);
    const done = (await ok(s.url, UpdateTaskStatusDocument, { input: { taskId: task.id, status: 'COMPLETED' } }, token))
      .updateTaskStatus;
    expect(done).toMatchObject({ status: 'COMPLETED', project: { id: project.id } });
    const audit = await s.sql<{ actor_label: string }>(
      `SELECT DISTINCT actor_label FROM audit_events WHERE entity_id = $1 AND action <> 'task.create'`,
      [task.id],
    );
    expect(audit).toEqual([{ actor_label: 'agent:senior-engineer' }]);
    // Agents do not create tasks or read lists: those are people's operations.
    expect(
      codes(await gql(s.url, CreateTaskDocument, { input: { title: 'By an agent', projectId: project.id } }, token)),
    ).toEqual(['FORBIDDEN']);
  });

  it('tells the assignees of an open overdue task once, through the overdue job', async () => {
    const {
      owner,
      project,
      members: [dev],
    } = await team('CONTRIBUTOR');
    const late = await newTask(owner, { projectId: project.id, title: 'Late work', dueDate: at(-HOUR) });
    const done = await taskIn(owner, project.id, 'COMPLETED', { dueDate: at(-HOUR) });
    await assign(owner, late.id, dev!.id);
    const alerts = (taskId: string) =>
      s.sql(`SELECT user_id, type FROM notifications WHERE data->>'taskId' = $1 AND type = 'ALERT'`, [taskId]);

    expect((await s.app.runtime.scheduler.runNow('work.notifyOverdueTasks')).ran).toBe(true);
    expect(await alerts(late.id)).toEqual([{ user_id: dev!.id, type: 'ALERT' }]);
    expect(await alerts(done.id)).toEqual([]);
    await s.app.runtime.scheduler.runNow('work.notifyOverdueTasks');
    expect(await alerts(late.id)).toHaveLength(1);
  });
});

describe('taskUpdated', () => {
  it('reaches a member subscribed to the project, and not a non-member', async () => {
    const {
      owner,
      project,
      members: [viewer],
    } = await team('VIEWER');
    const stranger = await user();
    const memberWs = wsClient(s.wsUrl, viewer!.token);
    const strangerWs = wsClient(s.wsUrl, stranger.token);
    try {
      const listeners = busListeners(s);
      const forMember = subscribe(memberWs, TaskUpdatedDocument, { projectId: project.id });
      const forStranger = subscribe(strangerWs, TaskUpdatedDocument, { projectId: project.id });
      const forStrangerAll = subscribe(strangerWs, TaskUpdatedDocument, {});
      await listeners.registered(3);

      const task = await newTask(owner, { projectId: project.id, title: 'Seen by members' });
      expect(await forMember.next()).toEqual({
        taskUpdated: { id: task.id, title: 'Seen by members', status: 'PENDING', project: { id: project.id } },
      });
      await moveTo(owner, task.id, 'CANCELLED');
      expect((await forMember.next()).taskUpdated).toMatchObject({ id: task.id, status: 'CANCELLED' });

      // Another project's task does not reach this project's subscribers.
      // The member's sentinel is a later task of this project: it must come next, not the other one.
      await newTask(owner, { projectId: (await newProject(owner)).id });
      const later = await newTask(owner, { projectId: project.id, title: 'Sentinel' });
      expect((await forMember.next()).taskUpdated).toMatchObject({ id: later.id, title: 'Sentinel' });
      await sentinel(s, strangerWs, stranger);
      expect(forStranger.received).toEqual([]);
      expect(forStrangerAll.received).toEqual([]);
    } finally {
      await Promise.all([memberWs.dispose(), strangerWs.dispose()]);
    }
  });

  it("reaches a personal task's creator and assignee, and no one else", async () => {
    const [creator, assignee, stranger] = await Promise.all([user(), user(), user()]);
    const sockets = [creator, assignee, stranger].map((u) => wsClient(s.wsUrl, u.token));
    try {
      const listeners = busListeners(s);
      const [forCreator, forAssignee, forStranger] = sockets.map((ws) => subscribe(ws, TaskUpdatedDocument, {}));
      await listeners.registered(3);

      const task = await newTask(creator, { title: 'Personal errand' });
      expect((await forCreator!.next()).taskUpdated).toMatchObject({ id: task.id, project: null });
      // Assigning publishes the change: the shared check of that event already counts the assignee.
      await assign(creator, task.id, assignee.id);
      expect((await forCreator!.next()).taskUpdated).toMatchObject({ id: task.id, status: 'ASSIGNED' });
      expect((await forAssignee!.next()).taskUpdated).toMatchObject({ id: task.id, status: 'ASSIGNED' });
      await sentinel(s, sockets[2]!, stranger);
      expect(forStranger!.received).toEqual([]);
    } finally {
      await Promise.all(sockets.map((ws) => ws.dispose()));
    }
  });

  it('tells members when a task is deleted', async () => {
    const {
      owner,
      project,
      members: [viewer],
    } = await team('VIEWER');
    const ws = wsClient(s.wsUrl, viewer!.token);
    try {
      const listeners = busListeners(s);
      const deleted = subscribe(ws, TaskDeletedDocument, { projectId: project.id });
      await listeners.registered(1);
      const task = await newTask(owner, { projectId: project.id });
      await ok(s.url, DeleteTaskDocument, { id: task.id }, owner.token);
      expect(await deleted.next()).toEqual({ taskDeleted: task.id });
    } finally {
      await ws.dispose();
    }
  });
});

describe('task audit', () => {
  it('records createTask with its actor and request id, in the same transaction', async () => {
    const { owner, project } = await team();
    const requestId = `req-${randomUUID()}`;
    const r = await gql(
      s.url,
      CreateTaskDocument,
      { input: { title: 'Audited', projectId: project.id, tags: ['x'] } },
      owner.token,
      { 'x-request-id': requestId },
    );
    const id = r.data!.createTask.id;
    const rows = await s.sql<Record<string, unknown>>(
      `SELECT action, actor_id, request_id, after FROM audit_events WHERE entity_type = 'Task' AND entity_id = $1`,
      [id],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      action: 'task.create',
      actor_id: owner.id,
      request_id: requestId,
      after: { title: 'Audited', projectId: project.id, tags: ['x'] },
    });

    // A refused change leaves no audit row behind.
    await setStatus(owner, id, 'COMPLETED');
    expect(await s.sql(`SELECT count(*)::int AS n FROM audit_events WHERE entity_id = $1`, [id])).toEqual([{ n: 1 }]);
  });
});
