import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  AddProjectMemberDocument,
  ArchiveProjectDocument,
  AssignTaskDocument,
  ChangeProjectMemberRoleDocument,
  CreateGitBranchDocument,
  CreateProjectDocument,
  CreateServiceTokenDocument,
  CreateTaskDocument,
  DeleteProjectDocument,
  DeleteProjectFileDocument,
  MarkGitBranchMergedDocument,
  ProjectDocument,
  ProjectFilesAndBranchesDocument,
  ProjectsDocument,
  ProjectTemplatesDocument,
  RegisterProjectFileDocument,
  RemoveProjectMemberDocument,
  RestoreProjectDocument,
  TaskDocument,
  TransferProjectOwnershipDocument,
  UpdateProjectDocument,
  type CreateProjectInput,
  type ProjectRole,
  type Role,
} from '../generated/graphql.js';
import { codes, gql, ok } from '../support/client.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, unique, type TestUser } from '../support/users.js';

/** Service tokens must expire. */
const SOON = new Date(Date.now() + 24 * 3600_000).toISOString();

let s: TestServer;
let admin: TestUser;
beforeAll(async () => {
  s = await startTestServer();
  admin = await firstAdmin(s);
});
afterAll(() => s?.close());

const user = (role: Role = 'USER') => createUser(s, admin, role);
const newProject = async (owner: TestUser, input: Partial<CreateProjectInput> = {}) =>
  (await ok(s.url, CreateProjectDocument, { input: { name: unique('project-'), ...input } }, owner.token))
    .createProject;
const addMember = (by: TestUser, projectId: string, userId: string, role: ProjectRole) =>
  gql(s.url, AddProjectMemberDocument, { input: { projectId, userId, role } }, by.token);
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
const projectOf = async (viewer: TestUser | string, id: string) =>
  (await ok(s.url, ProjectDocument, { id }, typeof viewer === 'string' ? viewer : viewer.token)).project;
const roles = (p: { members: { role: string; user: { id: string } }[] }) =>
  Object.fromEntries(p.members.map((m) => [m.user.id, m.role]));
const listed = async (viewer: TestUser, search: string, status?: ('ACTIVE' | 'ARCHIVED' | 'DELETED')[]) =>
  (await ok(s.url, ProjectsDocument, { first: 100, where: { search, status } }, viewer.token)).projects.edges
    .map((e) => e.node.id)
    .sort();
const serviceToken = async (serviceActor = 'agent:senior-engineer') =>
  (
    await ok(
      s.url,
      CreateServiceTokenDocument,
      { input: { name: unique('svc-'), serviceActor, expiresAt: SOON, scopes: ['read', 'write'] } },
      admin.token,
    )
  ).createServiceToken.token;

describe('createProject', () => {
  it('makes its creator the OWNER and only member', async () => {
    const owner = await user();
    const p = await newProject(owner, { description: 'A place for work' });
    expect(p).toMatchObject({
      status: 'ACTIVE',
      description: 'A place for work',
      myRole: 'OWNER',
      owner: { id: owner.id },
      template: null,
      settings: {},
    });
    expect(p.members).toEqual([{ role: 'OWNER', user: { id: owner.id } }]);
  });

  it('seeds the four built-in templates', async () => {
    const { projectTemplates } = await ok(s.url, ProjectTemplatesDocument, {}, (await user()).token);
    expect(projectTemplates.map((t) => t.key)).toEqual([
      'fullstack-react-fastapi',
      'nextjs-typescript',
      'python-fastapi',
      'react-typescript',
    ]);
  });

  it("copies a template's defaults into the settings, with given settings merged over them", async () => {
    const owner = await user();
    const p = await newProject(owner, { templateKey: 'python-fastapi', settings: { port: 9000, linter: 'ruff' } });
    expect(p.template).toEqual({ key: 'python-fastapi' });
    expect(p.settings).toEqual({ language: 'python', framework: 'fastapi', port: 9000, linter: 'ruff' });
    const plain = await newProject(owner, { templateKey: 'react-typescript' });
    expect(plain.settings).toEqual({ language: 'typescript', framework: 'react', buildTool: 'vite', port: 5173 });
  });

  it('refuses an unknown template with BAD_USER_INPUT and creates nothing', async () => {
    const owner = await user();
    const name = unique('nope-');
    const r = await gql(s.url, CreateProjectDocument, { input: { name, templateKey: 'cobol-mainframe' } }, owner.token);
    expect(codes(r)).toEqual(['BAD_USER_INPUT']);
    expect(await s.sql('SELECT 1 FROM projects WHERE name = $1', [name])).toEqual([]);
  });

  it('is audited with its actor and the request id', async () => {
    const owner = await user();
    const requestId = `req-${randomUUID()}`;
    const r = await gql(s.url, CreateProjectDocument, { input: { name: unique('audited-') } }, owner.token, {
      'x-request-id': requestId,
    });
    expect(r.errors).toBeUndefined();
    const rows = await s.sql<{
      action: string;
      actor_id: string;
      actor_label: string;
      request_id: string;
      entity_type: string;
    }>(`SELECT action, actor_id, actor_label, request_id, entity_type FROM audit_events WHERE entity_id = $1`, [
      r.data!.createProject.id,
    ]);
    expect(rows).toEqual([
      {
        action: 'project.create',
        actor_id: owner.id,
        actor_label: `user:${owner.id}`,
        request_id: requestId,
        entity_type: 'Project',
      },
    ]);
  });
});

describe('the project lifecycle', () => {
  it('lets MAINTAINERs update a project, but not CONTRIBUTORs', async () => {
    const {
      project,
      members: [maintainer, contributor],
    } = await team('MAINTAINER', 'CONTRIBUTOR');
    const input = {
      id: project.id,
      name: 'Renamed',
      description: 'New words',
      settings: { port: 1234 },
      gitRepoUrl: 'https://git.example.test/x.git',
    };
    const updated = (await ok(s.url, UpdateProjectDocument, { input }, maintainer!.token)).updateProject;
    expect(updated).toMatchObject({
      name: 'Renamed',
      description: 'New words',
      settings: { port: 1234 },
      gitRepoUrl: 'https://git.example.test/x.git',
    });
    expect(
      codes(
        await gql(s.url, UpdateProjectDocument, { input: { id: project.id, name: 'Mine now' } }, contributor!.token),
      ),
    ).toEqual(['FORBIDDEN']);
  });

  it('applies concurrent updates to one project one after the other, losing none', async () => {
    const { owner, project } = await team();
    const changes = [
      { name: 'Concurrent' },
      { description: 'Changed at once' },
      { settings: { port: 8080 } },
      { gitRepoUrl: 'https://git.example.test/c.git' },
    ];
    const results = await Promise.all(
      changes.map((c) => gql(s.url, UpdateProjectDocument, { input: { id: project.id, ...c } }, owner.token)),
    );
    expect(results.map((r) => codes(r))).toEqual(changes.map(() => []));
    expect(await projectOf(owner, project.id)).toMatchObject({
      name: 'Concurrent',
      description: 'Changed at once',
      settings: { port: 8080 },
      gitRepoUrl: 'https://git.example.test/c.git',
    });
  });

  it('archives a project: still readable, but it refuses new tasks with CONFLICT until restored', async () => {
    const {
      owner,
      project,
      members: [contributor],
    } = await team('CONTRIBUTOR');
    expect(codes(await gql(s.url, ArchiveProjectDocument, { id: project.id }, contributor!.token))).toEqual([
      'FORBIDDEN',
    ]);
    expect((await ok(s.url, ArchiveProjectDocument, { id: project.id }, owner.token)).archiveProject.status).toBe(
      'ARCHIVED',
    );
    expect((await projectOf(contributor!, project.id))?.status).toBe('ARCHIVED');

    const refused = await gql(
      s.url,
      CreateTaskDocument,
      { input: { title: 'Too late', projectId: project.id } },
      contributor!.token,
    );
    expect(codes(refused)).toEqual(['CONFLICT']);
    expect(
      codes(
        await gql(s.url, RegisterProjectFileDocument, { input: { projectId: project.id, path: 'a.txt' } }, owner.token),
      ),
    ).toEqual(['CONFLICT']);

    expect((await ok(s.url, RestoreProjectDocument, { id: project.id }, owner.token)).restoreProject.status).toBe(
      'ACTIVE',
    );
    const task = (
      await ok(
        s.url,
        CreateTaskDocument,
        { input: { title: 'Back to work', projectId: project.id } },
        contributor!.token,
      )
    ).createTask;
    expect(task.project).toEqual({ id: project.id });
  });

  it('soft-deletes a project: hidden from its members, kept and visible to admins, who may restore it', async () => {
    const {
      owner,
      project,
      members: [maintainer],
    } = await team('MAINTAINER');
    expect(codes(await gql(s.url, DeleteProjectDocument, { id: project.id }, maintainer!.token))).toEqual([
      'FORBIDDEN',
    ]);
    expect((await ok(s.url, DeleteProjectDocument, { id: project.id }, owner.token)).deleteProject.status).toBe(
      'DELETED',
    );

    for (const member of [owner, maintainer!]) {
      expect(await projectOf(member, project.id)).toBeNull();
      expect(await listed(member, project.name, ['ACTIVE', 'ARCHIVED', 'DELETED'])).toEqual([]);
    }
    expect(
      codes(await gql(s.url, UpdateProjectDocument, { input: { id: project.id, name: 'Ghost' } }, owner.token)),
    ).toEqual(['NOT_FOUND']);
    expect(codes(await gql(s.url, RestoreProjectDocument, { id: project.id }, owner.token))).toEqual(['NOT_FOUND']);
    expect(await s.sql('SELECT status FROM projects WHERE id = $1', [project.id])).toEqual([{ status: 'DELETED' }]);

    expect((await projectOf(admin, project.id))?.status).toBe('DELETED');
    expect(await listed(admin, project.name)).toEqual([]); // by default lists show ACTIVE and ARCHIVED
    expect(await listed(admin, project.name, ['DELETED'])).toEqual([project.id]);
    expect((await ok(s.url, RestoreProjectDocument, { id: project.id }, admin.token)).restoreProject.status).toBe(
      'ACTIVE',
    );
    expect((await projectOf(owner, project.id))?.id).toBe(project.id);
  });
});

describe('project members', () => {
  it('lets a MAINTAINER add CONTRIBUTORs and VIEWERs, while only the OWNER appoints MAINTAINERs', async () => {
    const {
      owner,
      project,
      members: [maintainer, contributor],
    } = await team('MAINTAINER', 'CONTRIBUTOR');
    const [a, b, c, d] = await Promise.all([user(), user(), user(), user()]);
    expect((await addMember(maintainer!, project.id, a!.id, 'CONTRIBUTOR')).data?.addProjectMember).toMatchObject({
      role: 'CONTRIBUTOR',
      user: { id: a!.id },
    });
    expect((await addMember(maintainer!, project.id, b!.id, 'VIEWER')).data?.addProjectMember.role).toBe('VIEWER');
    expect(codes(await addMember(maintainer!, project.id, c!.id, 'MAINTAINER'))).toEqual(['FORBIDDEN']);
    expect(codes(await addMember(contributor!, project.id, d!.id, 'VIEWER'))).toEqual(['FORBIDDEN']);
    expect((await addMember(owner, project.id, c!.id, 'MAINTAINER')).data?.addProjectMember.role).toBe('MAINTAINER');

    expect(roles((await projectOf(owner, project.id))!)).toEqual({
      [owner.id]: 'OWNER',
      [maintainer!.id]: 'MAINTAINER',
      [contributor!.id]: 'CONTRIBUTOR',
      [a!.id]: 'CONTRIBUTOR',
      [b!.id]: 'VIEWER',
      [c!.id]: 'MAINTAINER',
    });
  });

  it('refuses a second membership with CONFLICT, OWNER as a role with BAD_USER_INPUT, and an unknown user with NOT_FOUND', async () => {
    const {
      owner,
      project,
      members: [contributor],
    } = await team('CONTRIBUTOR');
    expect(codes(await addMember(owner, project.id, contributor!.id, 'VIEWER'))).toEqual(['CONFLICT']);
    expect(codes(await addMember(owner, project.id, (await user()).id, 'OWNER'))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await addMember(owner, project.id, randomUUID(), 'VIEWER'))).toEqual(['NOT_FOUND']);
  });

  it('changes roles: the OWNER promotes and demotes maintainers, a MAINTAINER only moves contributors and viewers', async () => {
    const {
      owner,
      project,
      members: [maintainer, contributor, viewer],
    } = await team('MAINTAINER', 'CONTRIBUTOR', 'VIEWER');
    const change = (by: TestUser, userId: string, role: ProjectRole) =>
      gql(s.url, ChangeProjectMemberRoleDocument, { input: { projectId: project.id, userId, role } }, by.token);

    expect((await change(maintainer!, viewer!.id, 'CONTRIBUTOR')).data?.changeProjectMemberRole.role).toBe(
      'CONTRIBUTOR',
    );
    expect(codes(await change(maintainer!, contributor!.id, 'MAINTAINER'))).toEqual(['FORBIDDEN']);
    expect(codes(await change(contributor!, viewer!.id, 'VIEWER'))).toEqual(['FORBIDDEN']);
    expect((await change(owner, contributor!.id, 'MAINTAINER')).data?.changeProjectMemberRole.role).toBe('MAINTAINER');
    expect(codes(await change(maintainer!, contributor!.id, 'VIEWER'))).toEqual(['FORBIDDEN']); // now a maintainer: the owner's call
    expect((await change(owner, maintainer!.id, 'VIEWER')).data?.changeProjectMemberRole.role).toBe('VIEWER');
    expect(codes(await change(owner, owner.id, 'MAINTAINER'))).toEqual(['CONFLICT']);
    expect(codes(await change(owner, owner.id, 'OWNER'))).toEqual(['BAD_USER_INPUT']);
  });

  it('lets a member leave and maintainers remove members; the OWNER can neither leave nor be removed', async () => {
    const {
      owner,
      project,
      members: [maintainer, other, contributor, viewer],
    } = await team('MAINTAINER', 'MAINTAINER', 'CONTRIBUTOR', 'VIEWER');
    const remove = (by: TestUser, userId: string) =>
      gql(s.url, RemoveProjectMemberDocument, { input: { projectId: project.id, userId } }, by.token);

    // An open assignment ends with the membership.
    const task = (
      await ok(s.url, CreateTaskDocument, { input: { title: 'Assigned work', projectId: project.id } }, owner.token)
    ).createTask;
    await ok(s.url, AssignTaskDocument, { input: { taskId: task.id, userId: contributor!.id } }, owner.token);

    expect(codes(await remove(viewer!, contributor!.id))).toEqual(['FORBIDDEN']);
    expect((await remove(viewer!, viewer!.id)).data?.removeProjectMember).toBe(true); // leaves
    expect(await projectOf(viewer!, project.id)).toBeNull();
    expect((await remove(maintainer!, contributor!.id)).data?.removeProjectMember).toBe(true);
    expect(codes(await remove(maintainer!, other!.id))).toEqual(['FORBIDDEN']); // only the owner removes maintainers
    expect((await remove(other!, other!.id)).data?.removeProjectMember).toBe(true); // but a maintainer may leave
    expect(codes(await remove(maintainer!, owner.id))).toEqual(['CONFLICT']);
    expect(codes(await remove(owner, owner.id))).toEqual(['CONFLICT']);
    expect((await remove(owner, maintainer!.id)).data?.removeProjectMember).toBe(true);

    expect(roles((await projectOf(owner, project.id))!)).toEqual({ [owner.id]: 'OWNER' });
    expect((await ok(s.url, TaskDocument, { id: task.id }, owner.token)).task?.assignees).toEqual([]);
  });

  it('transfers ownership to a member: the old OWNER stays as MAINTAINER', async () => {
    const {
      owner,
      project,
      members: [maintainer, contributor],
    } = await team('MAINTAINER', 'CONTRIBUTOR');
    const transfer = (by: TestUser, userId: string) =>
      gql(s.url, TransferProjectOwnershipDocument, { input: { projectId: project.id, userId } }, by.token);

    expect(codes(await transfer(maintainer!, maintainer!.id))).toEqual(['FORBIDDEN']);
    expect(codes(await transfer(owner, (await user()).id))).toEqual(['NOT_FOUND']); // not a member
    const moved = (await transfer(owner, contributor!.id)).data!.transferProjectOwnership;
    expect(moved.owner).toEqual({ id: contributor!.id });
    expect(roles(moved)).toEqual({
      [contributor!.id]: 'OWNER',
      [owner.id]: 'MAINTAINER',
      [maintainer!.id]: 'MAINTAINER',
    });
    expect((await projectOf(contributor!, project.id))?.myRole).toBe('OWNER');
    // The former owner is a maintainer now: it no longer appoints maintainers nor deletes the project.
    expect(codes(await addMember(owner, project.id, (await user()).id, 'MAINTAINER'))).toEqual(['FORBIDDEN']);
    expect(codes(await gql(s.url, DeleteProjectDocument, { id: project.id }, owner.token))).toEqual(['FORBIDDEN']);
  });
});

describe('project visibility', () => {
  it('shows a user only the projects it owns or collaborates on, and admins every project', async () => {
    const tag = unique('vis-');
    const [alice, bob, carol, stranger] = await Promise.all([user(), user(), user(), user()]);
    const a = await newProject(alice, { name: `${tag}-a` });
    const b = await newProject(bob, { name: `${tag}-b` });
    await ok(
      s.url,
      AddProjectMemberDocument,
      { input: { projectId: b.id, userId: carol.id, role: 'CONTRIBUTOR' } },
      bob.token,
    );

    expect(await listed(alice, tag)).toEqual([a.id]);
    expect(await listed(bob, tag)).toEqual([b.id]);
    expect(await listed(carol, tag)).toEqual([b.id]);
    expect(await listed(stranger, tag)).toEqual([]);
    expect(await listed(admin, tag)).toEqual([a.id, b.id].sort());

    expect(await projectOf(alice, b.id)).toBeNull();
    expect(await projectOf(stranger, a.id)).toBeNull();
    expect((await projectOf(admin, a.id))?.myRole).toBe('OWNER');
    expect((await projectOf(carol, b.id))?.myRole).toBe('CONTRIBUTOR');
  });

  it('lets an OBSERVER read the projects it is a member of, and change nothing', async () => {
    const { owner, project } = await team();
    const observer = await user('OBSERVER');
    const other = await newProject(owner);
    await ok(
      s.url,
      AddProjectMemberDocument,
      { input: { projectId: project.id, userId: observer.id, role: 'VIEWER' } },
      owner.token,
    );

    expect((await projectOf(observer, project.id))?.myRole).toBe('VIEWER');
    expect(await projectOf(observer, other.id)).toBeNull();
    expect(await listed(observer, project.name)).toEqual([project.id]);
    expect(codes(await gql(s.url, CreateProjectDocument, { input: { name: 'Observed' } }, observer.token))).toEqual([
      'FORBIDDEN',
    ]);
    expect(
      codes(
        await gql(s.url, CreateTaskDocument, { input: { title: 'Observed', projectId: project.id } }, observer.token),
      ),
    ).toEqual(['FORBIDDEN']);
  });

  it('answers a stranger with null for the project and NOT_FOUND for changes to it', async () => {
    const { project } = await team();
    const stranger = await user();
    expect(await projectOf(stranger, project.id)).toBeNull();
    expect(await projectOf(stranger, randomUUID())).toBeNull();
    expect(await projectOf(stranger, 'not-a-uuid')).toBeNull();
    expect(
      codes(await gql(s.url, UpdateProjectDocument, { input: { id: project.id, name: 'Hijacked' } }, stranger.token)),
    ).toEqual(['NOT_FOUND']);
    expect(codes(await addMember(stranger, project.id, stranger.id, 'VIEWER'))).toEqual(['NOT_FOUND']);
    expect(codes(await gql(s.url, ArchiveProjectDocument, { id: project.id }, stranger.token))).toEqual(['NOT_FOUND']);
    expect(
      codes(
        await gql(s.url, CreateTaskDocument, { input: { title: 'Sneaky', projectId: project.id } }, stranger.token),
      ),
    ).toEqual(['NOT_FOUND']);
  });
});

describe('project files and git branches', () => {
  const sha = (c: string) => c.repeat(64);

  it('registers a file, updates it by its path (one row per path), and deletes it by path', async () => {
    const {
      owner,
      project,
      members: [contributor, viewer],
    } = await team('CONTRIBUTOR', 'VIEWER');
    const register = (by: TestUser, input: Record<string, unknown>) =>
      gql(s.url, RegisterProjectFileDocument, { input: { projectId: project.id, ...input } as never }, by.token);

    const first = (
      await register(contributor!, { path: 'src/main.ts', fileType: 'typescript', sizeBytes: 120, sha256: sha('a') })
    ).data!.registerProjectFile;
    expect(first).toMatchObject({
      path: 'src/main.ts',
      fileType: 'typescript',
      sizeBytes: 120,
      sha256: sha('a'),
      createdByAgent: null,
    });
    const again = (
      await register(contributor!, { path: 'src/main.ts', fileType: 'typescript', sizeBytes: 340, sha256: sha('b') })
    ).data!.registerProjectFile;
    expect(again).toMatchObject({ id: first.id, sizeBytes: 340, sha256: sha('b') });
    await register(owner, { path: 'README.md', sizeBytes: 10 });

    // The same path in another project is another file.
    const elsewhere = await newProject(owner);
    const other = (
      await ok(
        s.url,
        RegisterProjectFileDocument,
        { input: { projectId: elsewhere.id, path: 'src/main.ts' } },
        owner.token,
      )
    ).registerProjectFile;
    expect(other.id).not.toBe(first.id);

    const files = (await ok(s.url, ProjectFilesAndBranchesDocument, { id: project.id }, viewer!.token)).project!.files;
    expect(files.totalCount).toBe(2);
    expect(files.edges.map((e) => e.node.path).sort()).toEqual(['README.md', 'src/main.ts']);

    expect(codes(await register(viewer!, { path: 'x.txt' }))).toEqual(['FORBIDDEN']);
    expect(codes(await register(owner, { path: '../escape.txt' }))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await register(owner, { path: 'bad.txt', sha256: 'not-hex' }))).toEqual(['BAD_USER_INPUT']);

    const del = (path: string) =>
      gql(s.url, DeleteProjectFileDocument, { input: { projectId: project.id, path } }, contributor!.token);
    expect((await del('src/main.ts')).data?.deleteProjectFile).toBe(true);
    expect(codes(await del('src/main.ts'))).toEqual(['NOT_FOUND']);
    const left = (await ok(s.url, ProjectFilesAndBranchesDocument, { id: project.id }, owner.token)).project!.files;
    expect(left.edges.map((e) => e.node.path)).toEqual(['README.md']);
    expect(await s.sql('SELECT count(*)::int AS n FROM project_files WHERE project_id = $1', [elsewhere.id])).toEqual([
      { n: 1 },
    ]);
  });

  it('creates a branch once per project (a duplicate is a CONFLICT) and marks it merged', async () => {
    const {
      owner,
      project,
      members: [contributor],
    } = await team('CONTRIBUTOR');
    const branch = (
      await ok(
        s.url,
        CreateGitBranchDocument,
        { input: { projectId: project.id, name: 'feature/login' } },
        contributor!.token,
      )
    ).createGitBranch;
    expect(branch).toMatchObject({ name: 'feature/login', isMerged: false, mergedAt: null });
    expect(
      codes(
        await gql(
          s.url,
          CreateGitBranchDocument,
          { input: { projectId: project.id, name: 'feature/login' } },
          owner.token,
        ),
      ),
    ).toEqual(['CONFLICT']);
    const elsewhere = await newProject(owner);
    await ok(
      s.url,
      CreateGitBranchDocument,
      { input: { projectId: elsewhere.id, name: 'feature/login' } },
      owner.token,
    );

    const merged = (
      await ok(
        s.url,
        MarkGitBranchMergedDocument,
        { input: { projectId: project.id, name: 'feature/login' } },
        contributor!.token,
      )
    ).markGitBranchMerged;
    expect(merged).toMatchObject({ id: branch.id, isMerged: true });
    expect(merged.mergedAt).toBeTruthy();
    expect(
      codes(
        await gql(
          s.url,
          MarkGitBranchMergedDocument,
          { input: { projectId: project.id, name: 'no-such-branch' } },
          owner.token,
        ),
      ),
    ).toEqual(['NOT_FOUND']);
    const { branches } = (await ok(s.url, ProjectFilesAndBranchesDocument, { id: project.id }, owner.token)).project!;
    expect(branches).toEqual([{ id: branch.id, name: 'feature/login', isMerged: true, createdByAgent: null }]);
  });

  it('lets an agent with a service token register files and create and merge branches, audited as the agent', async () => {
    const { owner, project } = await team();
    const agent = await serviceToken('agent:senior-engineer');
    const file = (
      await ok(
        s.url,
        RegisterProjectFileDocument,
        {
          input: {
            projectId: project.id,
            path: 'app/api.py',
            sizeBytes: 42,
            sha256: sha('c'),
            createdByAgent: 'SENIOR_ENGINEER',
          },
        },
        agent,
      )
    ).registerProjectFile;
    expect(file).toMatchObject({ path: 'app/api.py', createdByAgent: 'SENIOR_ENGINEER', sha256: sha('c') });
    const branch = (
      await ok(
        s.url,
        CreateGitBranchDocument,
        { input: { projectId: project.id, name: 'agent/api', createdByAgent: 'SENIOR_ENGINEER' } },
        agent,
      )
    ).createGitBranch;
    expect(branch.createdByAgent).toBe('SENIOR_ENGINEER');
    expect(
      codes(await gql(s.url, CreateGitBranchDocument, { input: { projectId: project.id, name: 'agent/api' } }, agent)),
    ).toEqual(['CONFLICT']);
    expect(
      (await ok(s.url, MarkGitBranchMergedDocument, { input: { projectId: project.id, name: 'agent/api' } }, agent))
        .markGitBranchMerged.isMerged,
    ).toBe(true);

    const audit = await s.sql<{ action: string; actor_label: string }>(
      `SELECT action, actor_label FROM audit_events WHERE entity_id IN ($1, $2) ORDER BY created_at, action`,
      [file.id, branch.id],
    );
    expect(audit.map((a) => a.action).sort()).toEqual(['gitBranch.create', 'gitBranch.merge', 'projectFile.register']);
    expect(new Set(audit.map((a) => a.actor_label))).toEqual(new Set(['agent:senior-engineer']));

    // A service token runs only service operations, and deleted projects do not exist for it.
    expect(codes(await gql(s.url, CreateProjectDocument, { input: { name: 'By an agent' } }, agent))).toEqual([
      'FORBIDDEN',
    ]);
    await ok(s.url, DeleteProjectDocument, { id: project.id }, owner.token);
    expect(
      codes(
        await gql(s.url, RegisterProjectFileDocument, { input: { projectId: project.id, path: 'late.txt' } }, agent),
      ),
    ).toEqual(['NOT_FOUND']);
  });
});
