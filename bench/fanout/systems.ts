/** The two systems measured: Steward and the raw-ws floor. */
import type { ChildProcess } from 'node:child_process';

import { titleOf, type FloorCommand, type FloorReply } from '../fanout-protocol.js';
import { graphql } from '../http.js';
import type { SystemUnderTest } from './measure.js';
import { exitReason, Replies, rssBytes, spawnNode } from './processes.js';
import { here, UPDATE_TASK } from './settings.js';
import type { Audience, CommitListener, StewardProcess } from './steward.js';

export function stewardSystem(
  steward: StewardProcess,
  listener: CommitListener,
  audience: Audience,
  outsiders: number,
): SystemUnderTest {
  const graphqlUrl = `${steward.url}/graphql`;
  return {
    name: 'steward',
    wsUrl: graphqlUrl.replace(/^http/, 'ws'),
    pid: steward.pid,
    outsiders,
    async publish(seq) {
      // The commit, not the fan-out: it comes within milliseconds unless something is broken.
      const committed = listener.next(10_000);
      committed.catch(() => {}); // awaited below, unless the mutation fails first
      try {
        await graphql(
          graphqlUrl,
          UPDATE_TASK,
          { input: { id: audience.task.id, title: titleOf(seq) } },
          audience.ownerToken,
        );
      } catch (err) {
        listener.cancel();
        throw err;
      }
      return committed;
    },
    // prom-client's histogram (monitorEventLoopDelay, 10 ms resolution) is reset at every scrape.
    loopMaxMs: async () => ((await steward.metrics()).get('steward_nodejs_eventloop_lag_max_seconds') ?? NaN) * 1000,
    async memory() {
      const { heapUsed, youngBytes } = await steward.gc();
      return { rss: rssBytes(steward.pid), heapUsed, youngBytes };
    },
    check: () => steward.check(),
  };
}

export async function startFloor(): Promise<{ child: ChildProcess; replies: Replies<FloorReply>; port: number }> {
  const child = spawnNode(
    ['--max-semi-space-size=64', '--expose-gc', here('../ws-floor.js')],
    ['ignore', 'inherit', 'inherit', 'ipc'],
  );
  const replies = new Replies<FloorReply>(child, 'the floor');
  const listening = await new Promise<FloorReply>((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', () => reject(new Error(`the floor ${exitReason(child)}`)));
  });
  if (listening.type !== 'listening') throw new Error(`the floor said ${listening.type} first`);
  return { child, replies, port: listening.port };
}

export function floorSystem(
  floor: { child: ChildProcess; replies: Replies<FloorReply>; port: number },
  task: Audience['task'],
): SystemUnderTest {
  return {
    name: 'floor',
    wsUrl: `ws://127.0.0.1:${floor.port}/graphql`,
    pid: floor.child.pid!,
    outsiders: 0, // nothing to keep from them: the floor checks nothing
    async publish(seq) {
      // What Steward sends for the subscription's selection (id title status priority updatedAt).
      const data = {
        taskUpdated: {
          id: task.id,
          title: titleOf(seq),
          status: task.status,
          priority: task.priority,
          updatedAt: new Date().toISOString(),
        },
      };
      const sent = await floor.replies.request({ type: 'publish', seq, data } satisfies FloorCommand, 'sent');
      return sent.t0;
    },
    loopMaxMs: async () => (await floor.replies.request({ type: 'loop' } satisfies FloorCommand, 'loop')).maxMs,
    async memory() {
      const m = await floor.replies.request({ type: 'memory' } satisfies FloorCommand, 'memory');
      return { rss: rssBytes(floor.child.pid!), heapUsed: m.heapUsed, youngBytes: m.youngBytes };
    },
    check() {
      const why = exitReason(floor.child);
      if (why) throw new Error(`the floor ${why}`);
    },
  };
}
