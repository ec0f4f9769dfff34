import { readFileSync } from 'node:fs';
import {
  buildSchema,
  getNamedType,
  isEnumType,
  isNonNullType,
  isObjectType,
  isScalarType,
  type GraphQLField,
  type GraphQLObjectType,
} from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { gql, ok } from '../support/client.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, unique, type TestUser } from '../support/users.js';

/**
 * A foreign viewer walks every relation of the schema (read from schema.graphql, so a new
 * relation is walked the day it is added) from every root query it can call, and must
 * meet none of the secrets of projects and tasks it may not see: a project it was
 * removed from (reached through an approval it once requested), a soft-deleted project,
 * and the personal tasks around the one personal task it is assigned to.
 */
const schema = buildSchema(readFileSync(new URL('../../schema.graphql', import.meta.url), 'utf8'));
const DEPTH = 4;

const hasRequiredArgs = (f: GraphQLField<unknown, unknown>) =>
  f.args.some((a) => isNonNullType(a.type) && a.defaultValue === undefined);
const isLeaf = (f: GraphQLField<unknown, unknown>) => {
  const t = getNamedType(f.type);
  return isScalarType(t) || isEnumType(t);
};

/**
 * Every relation field (object-typed field) of every object type a query can reach, as
 * `Type.field`. Types only mutations return (AuthPayload, CreatedApiToken…) wrap what the
 * caller just made; what they point to is reachable from queries too, and walked there.
 */
function relationFields(): Set<string> {
  const out = new Set<string>();
  const seen = new Set<string>();
  const visit = (t: GraphQLObjectType) => {
    if (seen.has(t.name)) return;
    seen.add(t.name);
    for (const f of Object.values(t.getFields())) {
      const target = getNamedType(f.type);
      if (!isObjectType(target)) continue;
      if (t.name !== 'Query') out.add(`${t.name}.${f.name}`);
      visit(target);
    }
  };
  visit(schema.getQueryType()!);
  return out;
}

/** A selection of every field of `type` down to `depth` relations; records each relation walked. */
function selection(type: GraphQLObjectType, depth: number, walked: Set<string>): string {
  const parts: string[] = [];
  for (const f of Object.values(type.getFields())) {
    if (hasRequiredArgs(f)) continue;
    if (isLeaf(f)) {
      parts.push(f.name);
      continue;
    }
    if (depth === 0) continue;
    const target = getNamedType(f.type) as GraphQLObjectType;
    if (!isObjectType(target)) continue;
    const inner = selection(target, depth - 1, walked);
    if (!inner) continue;
    walked.add(`${type.name}.${f.name}`);
    const args = f.args.some((a) => a.name === 'first') ? '(first: 5)' : '';
    parts.push(`${f.name}${args} { ${inner} }`);
  }
  if (!parts.includes('id') && type.getFields().id) parts.unshift('id');
  return parts.join(' ');
}

describe("every relation applies the viewer's visibility", () => {
  let s: TestServer;
  let admin: TestUser;
  let outsider: TestUser;
  let secrets: string[];
  const known: Record<string, string[]> = {};

  beforeAll(async () => {
    s = await startTestServer({
      env: { MAX_QUERY_TOKENS: '200000', MAX_QUERY_COST: '100000000', MAX_QUERY_DEPTH: '20' },
    });
    admin = await firstAdmin(s);
    const owner = await createUser(s, admin);
    outsider = await createUser(s, admin);
    const secret = () => unique('SECRET-');
    secrets = [];
    const mark = () => {
      const v = secret();
      secrets.push(v);
      return v;
    };

    // A project the outsider worked in, requested an approval in, then was removed from.
    const left = (
      await ok(
        s.url,
        `mutation($i: CreateProjectInput!) { createProject(input: $i) { id } }`,
        { i: { name: unique('left-'), description: mark(), gitRepoUrl: `https://git.example.test/${mark()}.git` } },
        owner.token,
      )
    ).createProject;
    await ok(
      s.url,
      `mutation($i: AddProjectMemberInput!) { addProjectMember(input: $i) { role } }`,
      { i: { projectId: left.id, userId: outsider.id, role: 'CONTRIBUTOR' } },
      owner.token,
    );
    const leftTask = (
      await ok(
        s.url,
        `mutation($i: CreateTaskInput!) { createTask(input: $i) { id } }`,
        { i: { title: 'Deploy', description: mark(), projectId: left.id } },
        owner.token,
      )
    ).createTask;
    const leftSub = (
      await ok(
        s.url,
        `mutation($i: CreateTaskInput!) { createTask(input: $i) { id } }`,
        { i: { title: 'Sub', description: mark(), projectId: left.id, parentId: leftTask.id } },
        owner.token,
      )
    ).createTask;
    const a1 = (
      await ok(
        s.url,
        `mutation($i: RequestApprovalInput!) { requestApproval(input: $i) { id } }`,
        { i: { actionType: 'deploy', taskId: leftSub.id } },
        outsider.token,
      )
    ).requestApproval;
    await ok(
      s.url,
      `mutation($i: ProjectMemberRefInput!) { removeProjectMember(input: $i) }`,
      { i: { projectId: left.id, userId: outsider.id } },
      owner.token,
    );

    // A project the outsider still belongs to, soft-deleted by its owner.
    const gone = (
      await ok(
        s.url,
        `mutation($i: CreateProjectInput!) { createProject(input: $i) { id } }`,
        { i: { name: unique('gone-'), description: mark() } },
        owner.token,
      )
    ).createProject;
    await ok(
      s.url,
      `mutation($i: AddProjectMemberInput!) { addProjectMember(input: $i) { role } }`,
      { i: { projectId: gone.id, userId: outsider.id, role: 'CONTRIBUTOR' } },
      owner.token,
    );
    const goneTask = (
      await ok(
        s.url,
        `mutation($i: CreateTaskInput!) { createTask(input: $i) { id } }`,
        { i: { title: 'Gone', description: mark(), projectId: gone.id } },
        owner.token,
      )
    ).createTask;
    const a2 = (
      await ok(
        s.url,
        `mutation($i: RequestApprovalInput!) { requestApproval(input: $i) { id } }`,
        { i: { actionType: 'merge', taskId: goneTask.id } },
        outsider.token,
      )
    ).requestApproval;
    await ok(s.url, `mutation($id: ID!) { deleteProject(id: $id) { id } }`, { id: gone.id }, owner.token);

    // Personal tasks of the owner: the outsider is assigned to the middle one only.
    const create = async (input: Record<string, unknown>) =>
      (await ok(s.url, `mutation($i: CreateTaskInput!) { createTask(input: $i) { id } }`, { i: input }, owner.token))
        .createTask.id as string;
    const parent = await create({ title: 'Parent', description: mark() });
    const dependency = await create({ title: 'Dependency', description: mark() });
    const middle = await create({ title: 'Middle', parentId: parent, dependsOn: [dependency] });
    await create({ title: 'Child', description: mark(), parentId: middle });
    await ok(
      s.url,
      `mutation($i: AssignTaskInput!) { assignTask(input: $i) { id } }`,
      { i: { taskId: middle, userId: outsider.id } },
      owner.token,
    );

    // Ids roots take: the outsider's own rows and the hidden ones (which the roots must refuse).
    known.Approval = [a1.id, a2.id];
    known.Task = [middle, parent, dependency, leftTask.id, goneTask.id];
    known.Project = [left.id, gone.id];
  });

  afterAll(() => s?.close());

  it('the setup reaches the secrets (the walk would see a leak)', async () => {
    const r = await ok(
      s.url,
      `query($id: ID!) { approval(id: $id) { project { description gitRepoUrl } task { description parent { description } } } }`,
      { id: known.Approval![0] },
      admin.token,
    );
    expect(JSON.stringify(r)).toContain(secrets[0]);
    expect(JSON.stringify(r)).toContain(secrets[3]);
  });

  it('no root and no relation below it shows a foreign viewer what it may not see', async () => {
    const walked = new Set<string>();
    const query = schema.getQueryType()!;
    const asked: string[] = [];
    let answered = 0;
    for (const root of Object.values(query.getFields())) {
      const target = getNamedType(root.type);
      if (!isObjectType(target)) continue;
      const required = root.args.filter((a) => isNonNullType(a.type) && a.defaultValue === undefined);
      const calls: string[] = [];
      const sel = selection(target, DEPTH, walked);
      const first = root.args.some((a) => a.name === 'first') ? 'first: 5' : '';
      if (required.length === 0) calls.push(`{ ${root.name}${first ? `(${first})` : ''} { ${sel} } }`);
      else if (required.length === 1 && required[0]!.name === 'id') {
        for (const id of known[target.name] ?? []) calls.push(`{ ${root.name}(id: "${id}") { ${sel} } }`);
      }
      for (const q of calls) {
        asked.push(root.name);
        const r = await gql(s.url, q, {}, outsider.token);
        // Refusals are fine (FORBIDDEN for admin-only roots); an answer must hold no secret.
        if (r.data) answered++;
        const text = JSON.stringify(r);
        for (const secret of secrets)
          expect(text, `${root.name} leaks ${secret}: ${text.slice(0, 2000)}`).not.toContain(secret);
        expect(r.errors?.filter((e) => e.extensions?.code === 'INTERNAL_SERVER_ERROR') ?? [], q.slice(0, 200)).toEqual(
          [],
        );
      }
    }
    expect(asked).toEqual(expect.arrayContaining(['approvals', 'approval', 'task', 'tasks', 'projects', 'project']));
    expect(answered).toBeGreaterThan(10);
    // Every relation of the schema was part of the walk: a new one cannot escape it.
    const missing = [...relationFields()].filter((f) => !walked.has(f));
    expect(missing).toEqual([]);
  });
});
