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

const setIntents = (by: TestUser, id: string, allowedIntents: string[]) =>
  gql(
    s.url,
    `mutation($i: UpdateTaskInput!) { updateTask(input: $i) { allowedIntents } }`,
    { i: { id, allowedIntents } },
    by.token,
  );
const start = (by: TestUser, taskId?: string, url = s.url) =>
  gql(
    url,
    `mutation($i: StartConversationInput!) { startConversation(input: $i) { id } }`,
    { i: { taskId } },
    by.token,
  );

describe('prompt governance cannot be weaponised or dodged', () => {
  it("exposes the classifier's vocabulary and refuses intents outside it", async () => {
    const { owner, task } = await team(s, admin, []);
    const vocabulary = (await ok(s.url, `{ intentVocabulary }`, {}, owner.token)).intentVocabulary;
    expect(vocabulary).toEqual(expect.arrayContaining(['coding', 'debugging', 'general_chat']));
    expect(codes(await setIntents(owner, task.id, ['coding', 'world_domination']))).toEqual(['BAD_USER_INPUT']);
    expect((await setIntents(owner, task.id, ['coding'])).data?.updateTask.allowedIntents).toEqual(['coding']);
  });

  it("lets only MAINTAINER+ change a task's allowed intents", async () => {
    const { owner, task, members } = await team(s, admin, ['CONTRIBUTOR', 'MAINTAINER']);
    const [contributor, maintainer] = members;
    expect(codes(await setIntents(contributor!, task.id, ['personal']))).toEqual(['FORBIDDEN']);
    expect(
      codes(
        await gql(
          s.url,
          `mutation($i: CreateTaskInput!) { createTask(input: $i) { id } }`,
          {
            i: {
              title: 'trap',
              projectId: (
                await ok(s.url, `query($id: ID!) { task(id: $id) { project { id } } }`, { id: task.id }, owner.token)
              ).task.project.id,
              allowedIntents: ['personal'],
            },
          },
          contributor!.token,
        ),
      ),
    ).toEqual(['FORBIDDEN']);
    expect((await setIntents(maintainer!, task.id, ['testing'])).errors).toBeUndefined();
    // A contributor still changes the rest of the task.
    expect(
      (
        await gql(
          s.url,
          `mutation($i: UpdateTaskInput!) { updateTask(input: $i) { title } }`,
          { i: { id: task.id, title: 'renamed' } },
          contributor!.token,
        )
      ).errors,
    ).toBeUndefined();
  });

  it('binds a conversation only to a task the user is assigned to', async () => {
    const { owner, task, members } = await team(s, admin, ['CONTRIBUTOR']);
    const [colleague] = members;
    const r = await start(colleague!, task.id);
    expect(codes(r)).toEqual(['FORBIDDEN']);
    expect(r.errors![0]!.message).toContain('assigned');
    await ok(
      s.url,
      `mutation($i: AssignTaskInput!) { assignTask(input: $i) { id } }`,
      { i: { taskId: task.id, userId: colleague!.id } },
      owner.token,
    );
    expect((await start(colleague!, task.id)).errors).toBeUndefined();
  });

  it('with GOVERNANCE_REQUIRED, refuses a conversation without a task', async () => {
    const strict = await startTestServer({ env: { GOVERNANCE_REQUIRED: 'true' } });
    try {
      const a = await firstAdmin(strict);
      const r = await start(a, undefined, strict.url);
      expect(codes(r)).toEqual(['BAD_USER_INPUT']);
      expect(r.errors![0]!.message).toContain('governance');
    } finally {
      await strict.close();
    }
  });
});
