import {
  AddProjectMemberDocument,
  CreateProjectDocument,
  CreateTaskDocument,
  type ProjectRole,
} from '../generated/graphql.js';
import { ok } from './client.js';
import type { TestServer } from './server.js';
import { createUser, unique, type TestUser } from './users.js';

/** A project owned by a fresh user, with fresh members of the given roles (in that order), and one task. */
export async function team(s: TestServer, admin: TestUser, roles: ProjectRole[], taskTitle = 'Deploy to production') {
  const owner = await createUser(s, admin);
  const project = (await ok(s.url, CreateProjectDocument, { input: { name: unique('project-') } }, owner.token))
    .createProject;
  const members: TestUser[] = [];
  for (const role of roles) {
    const m = await createUser(s, admin);
    await ok(s.url, AddProjectMemberDocument, { input: { projectId: project.id, userId: m.id, role } }, owner.token);
    members.push(m);
  }
  const task = (
    await ok(s.url, CreateTaskDocument, { input: { title: taskTitle, projectId: project.id } }, owner.token)
  ).createTask;
  return { owner, project, task, members };
}
