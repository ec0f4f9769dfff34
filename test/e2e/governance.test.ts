import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { codes, gql, ok } from '../support/client.js';
import { team } from '../support/projects.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, type TestUser } from '../support/users.js';
import { until } from '../support/wait.js';

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
const SETTINGS = `{ governanceSettings { required source updatedAt updatedById } }`;
const SET = `mutation($i: GovernanceSettingsInput!) { setGovernanceSettings(input: $i) { required source updatedById } }`;
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
      // The environment is only the default: an admin's organisation setting wins.
      expect((await ok(strict.url, SETTINGS, {}, a.token)).governanceSettings).toMatchObject({
        required: true,
        source: 'DEFAULT',
      });
      await ok(strict.url, SET, { i: { required: false } }, a.token);
      expect((await start(a, undefined, strict.url)).errors).toBeUndefined();
    } finally {
      await strict.close();
    }
  });

  it('is an organisation setting an admin changes over GraphQL: audited, and on every instance at once', async () => {
    const other = await startTestServer({ shareDatabaseWith: s });
    try {
      const user = await createUser(s, admin);
      expect((await ok(s.url, SETTINGS, {}, user.token)).governanceSettings).toEqual({
        required: false,
        source: 'DEFAULT',
        updatedAt: null,
        updatedById: null,
      });
      // Both instances have read the setting (and keep it) before it changes.
      expect((await start(user, undefined, s.url)).errors).toBeUndefined();
      expect((await start(user, undefined, other.url)).errors).toBeUndefined();

      expect(codes(await gql(s.url, SET, { i: { required: true } }, user.token))).toEqual(['FORBIDDEN']);
      const set = (await ok(s.url, SET, { i: { required: true } }, admin.token)).setGovernanceSettings;
      expect(set).toMatchObject({ required: true, source: 'ORGANISATION', updatedById: admin.id });

      // Here at once; on the other instance as soon as the change's event arrives (no restart, no poll of the table).
      expect(codes(await start(user, undefined, s.url))).toEqual(['BAD_USER_INPUT']);
      await until(
        async () => codes(await start(user, undefined, other.url))[0] === 'BAD_USER_INPUT',
        'the other instance refusing a call without a task',
        2000,
      );
      expect((await ok(other.url, SETTINGS, {}, user.token)).governanceSettings.required).toBe(true);

      const audit = await s.sql<{ actor_id: string; before: unknown; after: unknown }>(
        `SELECT actor_id, before, after FROM audit_events WHERE action = 'organisation.setting' AND entity_id = 'governance.required'`,
      );
      expect(audit).toEqual([{ actor_id: admin.id, before: { value: null, default: false }, after: { value: true } }]);

      await ok(other.url, SET, { i: { required: false } }, admin.token);
      await until(
        async () => (await start(user, undefined, s.url)).errors === undefined,
        'the first instance taking the call again',
        2000,
      );
    } finally {
      await other.close();
    }
  });
});
