import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';

import { TASK_UPDATED } from '../../src/modules/work/task.events.js';
import { TaskUpdatedDocument, UpdateTaskDocument } from '../generated/graphql.js';
import { ok, subscribe, wsClient, type Subscription } from '../support/client.js';
import { scrapeMetrics } from '../support/metrics.js';
import { team } from '../support/projects.js';
import { sentinel } from '../support/sentinel.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, type TestUser } from '../support/users.js';
import { busListeners, until } from '../support/wait.js';

/**
 * Subscription delivery over many sockets (src/server/fanout.ts): an event is executed
 * once for every subscriber of the same operation who may hear it, again per viewer
 * only where the answer depends on who asks; dead sockets are swept.
 */
let s: TestServer;
let admin: TestUser;
beforeAll(async () => {
  // A fast keep-alive sweep, for the dead-socket test.
  s = await startTestServer({ env: { WS_KEEPALIVE_MS: '200' } });
  admin = await firstAdmin(s);
});
afterAll(() => s?.close());

/**
 * Waits until every subscription has received a change made now: events reach the
 * fan-out in commit order, so whatever was committed before (e.g. team()'s createTask,
 * whose event may still be on its way) has been delivered by then and counts no more.
 */
async function settled(subs: Subscription<{ taskUpdated: { title: string } }>[], owner: TestUser, taskId: string) {
  const title = `settled ${Math.random()}`;
  await ok(s.url, UpdateTaskDocument, { input: { id: taskId, title } }, owner.token);
  for (const sub of subs) while ((await sub.next()).taskUpdated.title !== title);
}

const WITH_MY_ROLE =
  'subscription ($projectId: ID) { taskUpdated(projectId: $projectId) { id title project { id myRole } } }';

describe('subscription fan-out', () => {
  it('executes an event once for all who may hear it, and gives each subscription its own id', async () => {
    const { owner, project, task, members } = await team(s, admin, ['CONTRIBUTOR', 'VIEWER', 'VIEWER']);
    const stranger = await createUser(s, admin);
    const hearing = [owner, ...members];
    // Two sockets per member, one subscription each: eight subscriptions of one operation.
    const clients = [...hearing, ...hearing].map((u) => wsClient(s.wsUrl, u.token));
    const strangerWs = wsClient(s.wsUrl, stranger.token);
    try {
      const listening = busListeners(s);
      const subs = clients.map((c) => subscribe(c, TaskUpdatedDocument, { projectId: project.id }));
      const forStranger = subscribe(strangerWs, TaskUpdatedDocument, { projectId: project.id });
      await listening.registered(9);
      await settled(subs, owner, task.id);
      const topic = { topic: TASK_UPDATED };
      const before = await scrapeMetrics(s);

      await ok(s.url, UpdateTaskDocument, { input: { id: task.id, title: 'Once for all' } }, owner.token);
      for (const sub of subs)
        expect(await sub.next()).toEqual({
          taskUpdated: { id: task.id, title: 'Once for all', status: 'PENDING', project: { id: project.id } },
        });
      await sentinel(s, strangerWs, stranger);
      expect(forStranger.received).toEqual([]);

      const after = await scrapeMetrics(s);
      expect(
        after.value('steward_subscription_executions_total', topic) -
          before.value('steward_subscription_executions_total', topic),
      ).toBe(1);
      expect(
        after.value('steward_subscription_messages_total', topic) -
          before.value('steward_subscription_messages_total', topic),
      ).toBe(8);
    } finally {
      await Promise.all([...clients, strangerWs].map((c) => c.dispose()));
    }
  });

  it('executes again per viewer when the answer depends on who asks', async () => {
    const { owner, project, task, members } = await team(s, admin, ['CONTRIBUTOR', 'VIEWER']);
    const clients = [owner, ...members].map((u) => wsClient(s.wsUrl, u.token));
    try {
      const listening = busListeners(s);
      const subs: Subscription<{ taskUpdated: { title: string; project: { myRole: string } } }>[] = clients.map((c) =>
        subscribe(c, WITH_MY_ROLE, { projectId: project.id }),
      );
      await listening.registered(3);
      await settled(subs, owner, task.id);
      const before = await scrapeMetrics(s);

      await ok(s.url, UpdateTaskDocument, { input: { id: task.id, title: 'Per viewer' } }, owner.token);
      const roles = await Promise.all(subs.map(async (sub) => (await sub.next()).taskUpdated.project.myRole));
      expect(roles).toEqual(['OWNER', 'CONTRIBUTOR', 'VIEWER']);

      const after = await scrapeMetrics(s);
      const executions = (m: typeof after) => m.value('steward_subscription_executions_total', { topic: TASK_UPDATED });
      expect(executions(after) - executions(before)).toBe(3);
    } finally {
      await Promise.all(clients.map((c) => c.dispose()));
    }
  });

  it('keeps delivering to the others when a subscriber leaves, and counts subscriptions down', async () => {
    const { owner, project, task } = await team(s, admin, []);
    const [stays, leaves] = [wsClient(s.wsUrl, owner.token), wsClient(s.wsUrl, owner.token)];
    try {
      const listening = busListeners(s);
      const kept = subscribe(stays, TaskUpdatedDocument, { projectId: project.id });
      const gone = subscribe(leaves, TaskUpdatedDocument, { projectId: project.id });
      await listening.registered(2);
      await settled([kept, gone], owner, task.id);
      const live = s.app.subscriptions;
      gone.dispose();
      await until(() => s.app.subscriptions === live - 1, 'the completed subscription to leave the fan-out');
      await ok(s.url, UpdateTaskDocument, { input: { id: task.id, title: 'After one left' } }, owner.token);
      expect((await kept.next()).taskUpdated).toMatchObject({ title: 'After one left' });
      await leaves.dispose();
      await until(() => s.app.subscriptions === live - 1, 'no subscription left behind');
    } finally {
      await Promise.all([stays.dispose(), leaves.dispose()]);
    }
  });

  it('drops a socket that stops answering the keep-alive pings, and keeps one that answers', async () => {
    const open = (autoPong: boolean) => {
      const socket = new WebSocket(s.wsUrl, 'graphql-transport-ws', { autoPong });
      const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
      socket.once('open', () =>
        socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${admin.token}` } })),
      );
      return { socket, closed };
    };
    const silent = open(false);
    const polite = open(true);
    // Terminated, not closed: 1006 on the client's side.
    expect(await silent.closed).toBe(1006);
    await new Promise((r) => setTimeout(r, 600)); // three more sweeps
    expect(polite.socket.readyState).toBe(WebSocket.OPEN);
    polite.socket.close();
  });
});
