import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { codes, gql, ok } from '../support/client.js';
import { team } from '../support/projects.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { firstAdmin, type TestUser } from '../support/users.js';

let s: TestServer;
let admin: TestUser;
beforeAll(async () => {
  s = await startTestServer();
  admin = await firstAdmin(s);
});
afterAll(() => s?.close());

describe('projectVersions is a query: it writes nothing', () => {
  it('answers V1, V2 and V3 of a new project without writing a row', async () => {
    const { owner, project } = await team(s, admin, []);
    const before = await s.sql<{ n: number; xmax: string }>(
      `SELECT count(*)::int AS n, max(xmin::text) AS xmax FROM versions WHERE project_id = $1`,
      [project.id],
    );
    const r = await ok(
      s.url,
      `query($p: ID!) { projectVersions(projectId: $p) { id tag } }`,
      { p: project.id },
      owner.token,
    );
    expect(r.projectVersions.map((v: { tag: string }) => v.tag)).toEqual(['V1', 'V2', 'V3']);
    const after = await s.sql<{ n: number; xmax: string }>(
      `SELECT count(*)::int AS n, max(xmin::text) AS xmax FROM versions WHERE project_id = $1`,
      [project.id],
    );
    // The rows were there before the query (made with the project) and the query did not touch them.
    expect(before[0]!.n).toBe(3);
    expect(after).toEqual(before);
  });
});

describe("an archived project's approvals cannot be decided", () => {
  it('refuses approve and reject with CONFLICT while archived, and decides once restored', async () => {
    const { owner, project, task, members } = await team(s, admin, ['CONTRIBUTOR']);
    const [contributor] = members;
    const a = (
      await ok(
        s.url,
        `mutation($i: RequestApprovalInput!) { requestApproval(input: $i) { id } }`,
        { i: { actionType: 'deploy', taskId: task.id } },
        contributor!.token,
      )
    ).requestApproval;
    await ok(s.url, `mutation($id: ID!) { archiveProject(id: $id) { status } }`, { id: project.id }, owner.token);
    for (const m of ['approveApproval', 'rejectApproval']) {
      for (const who of [owner, admin]) {
        const r = await gql(
          s.url,
          `mutation($i: DecideApprovalInput!) { ${m}(input: $i) { status } }`,
          { i: { id: a.id } },
          who.token,
        );
        expect(codes(r)).toEqual(['CONFLICT']);
      }
    }
    const [row] = await s.sql<{ status: string }>(`SELECT status FROM approvals WHERE id = $1`, [a.id]);
    expect(row!.status).toBe('PENDING');
    await ok(s.url, `mutation($id: ID!) { restoreProject(id: $id) { status } }`, { id: project.id }, owner.token);
    const done = await ok(
      s.url,
      `mutation($i: DecideApprovalInput!) { approveApproval(input: $i) { status } }`,
      { i: { id: a.id } },
      owner.token,
    );
    expect(done.approveApproval.status).toBe('APPROVED');
  });
});

describe('tasks are soft-deleted', () => {
  it('a deleted task leaves lists and paths, keeps its approvals and audit history, and an admin lists and restores it', async () => {
    const { owner, project, task, members } = await team(s, admin, ['CONTRIBUTOR']);
    const [contributor] = members;
    const a = (
      await ok(
        s.url,
        `mutation($i: RequestApprovalInput!) { requestApproval(input: $i) { id } }`,
        { i: { actionType: 'deploy', taskId: task.id } },
        contributor!.token,
      )
    ).requestApproval;
    expect(await ok(s.url, `mutation($id: ID!) { deleteTask(id: $id) }`, { id: task.id }, owner.token)).toEqual({
      deleteTask: true,
    });

    // Gone for everyone's lists and paths, admins' included.
    for (const who of [owner, contributor!, admin]) {
      const r = await ok(
        s.url,
        `query($id: ID!, $p: ID!) { task(id: $id) { id } tasks(where: { projectId: $p }) { totalCount } project(id: $p) { tasks { totalCount } } }`,
        { id: task.id, p: project.id },
        who.token,
      );
      expect(r).toEqual({ task: null, tasks: { totalCount: 0 }, project: { tasks: { totalCount: 0 } } });
    }
    expect(
      codes(
        await gql(
          s.url,
          `mutation($i: UpdateTaskInput!) { updateTask(input: $i) { id } }`,
          { i: { id: task.id, title: 'again' } },
          owner.token,
        ),
      ),
    ).toEqual(['NOT_FOUND']);

    // Its approval and history stay.
    const approval = await ok(
      s.url,
      `query($id: ID!) { approval(id: $id) { id actionType task { id } } }`,
      { id: a.id },
      owner.token,
    );
    expect(approval.approval).toEqual({ id: a.id, actionType: 'deploy', task: null });
    const [kept] = await s.sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM tasks WHERE id = $1 AND deleted_at IS NOT NULL`,
      [task.id],
    );
    expect(kept!.n).toBe(1);
    const audit = await ok(
      s.url,
      `query($w: AuditEventWhere) { auditEvents(where: $w) { edges { node { action } } } }`,
      { w: { entityId: task.id } },
      admin.token,
    );
    expect(audit.auditEvents.edges.map((e: { node: { action: string } }) => e.node.action)).toEqual(
      expect.arrayContaining(['task.create', 'task.delete']),
    );

    // Only admins list and restore deleted tasks.
    expect(codes(await gql(s.url, `{ deletedTasks { totalCount } }`, {}, owner.token))).toEqual(['FORBIDDEN']);
    expect(
      codes(await gql(s.url, `mutation($id: ID!) { restoreTask(id: $id) { id } }`, { id: task.id }, owner.token)),
    ).toEqual(['FORBIDDEN']);
    const deleted = await ok(
      s.url,
      `query($p: ID) { deletedTasks(projectId: $p) { edges { node { id deletedAt } } } }`,
      { p: project.id },
      admin.token,
    );
    expect(deleted.deletedTasks.edges.map((e: { node: { id: string } }) => e.node.id)).toEqual([task.id]);
    expect(deleted.deletedTasks.edges[0].node.deletedAt).toBeTruthy();

    const restored = await ok(
      s.url,
      `mutation($id: ID!) { restoreTask(id: $id) { id deletedAt approvals { id } } }`,
      { id: task.id },
      admin.token,
    );
    expect(restored.restoreTask).toEqual({ id: task.id, deletedAt: null, approvals: [{ id: a.id }] });
    const back = await ok(s.url, `query($id: ID!) { task(id: $id) { id } }`, { id: task.id }, owner.token);
    expect(back.task).toEqual({ id: task.id });
    expect(
      codes(await gql(s.url, `mutation($id: ID!) { restoreTask(id: $id) { id } }`, { id: task.id }, admin.token)),
    ).toEqual(['NOT_FOUND']);
  });
});
