import {
  GraphQLInt,
  GraphQLNonNull,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLString,
  parse,
  type DocumentNode,
} from 'graphql';
import { describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';

import type { EventBus } from '../../src/events/bus.js';
import { TopicSource, type Hears } from '../../src/events/subscription.js';
import { Role } from '../../src/modules/identity/user.entity.js';
import type { Context, Runtime } from '../../src/server/context.js';
import { Fanout } from '../../src/server/fanout.js';
import type { Viewer } from '../../src/shared/scope.js';

/**
 * The fan-out's delivery rules, without a database: a one-field schema whose answer is
 * the event's number, sockets that record what they are sent, and a bus whose events
 * the test emits. What reaches PostgreSQL and real sockets is covered end to end in
 * test/e2e/fanout.test.ts.
 */
const schema = new GraphQLSchema({
  query: new GraphQLObjectType({ name: 'Query', fields: { ok: { type: GraphQLString } } }),
  subscription: new GraphQLObjectType({
    name: 'Subscription',
    fields: {
      tick: {
        type: new GraphQLNonNull(GraphQLInt),
        resolve: (e: { n: number }) => e.n,
      },
      whoAmI: {
        type: new GraphQLNonNull(GraphQLString),
        resolve: (_e, _args, ctx: Context) => ctx.viewer!.userId,
      },
    },
  }),
});

class FakeSocket {
  readonly OPEN = 1;
  readyState = 1;
  bufferedAmount = 0;
  sent: string[] = [];
  closedWith?: number;
  send(data: Buffer) {
    this.sent.push(String(data));
  }
  close(code: number) {
    this.closedWith = code;
    this.readyState = 3;
  }
}

function setup(sendsPerTurn = 500) {
  const handlers = new Map<string, (p: unknown) => void>();
  const bus = {
    on: (topic: string, h: (p: unknown) => void) => (handlers.set(topic, h), () => handlers.delete(topic)),
  } as unknown as EventBus;
  const logged: unknown[] = [];
  const runtime = { bus, logger: { error: (o: unknown) => logged.push(o) } } as unknown as Runtime;
  const fanout = new Fanout({
    schema,
    runtime,
    format: (errors) => errors.map((e) => e.toJSON()),
    sendsPerTurn,
    maxBufferedBytes: 1000,
  });
  let ids = 0;
  // One document object per text, as ws.ts's document cache gives: subscribers of one text form one group.
  const documents = new Map<string, DocumentNode>();
  const add = (query: string, viewer: Viewer, hears: Hears<unknown> = () => true) => {
    const socket = new FakeSocket();
    const source = new TopicSource('ticks', viewer, hears);
    let document = documents.get(query);
    if (!document) documents.set(query, (document = parse(query)));
    const remove = fanout.add({ id: `op-${++ids}`, socket: socket as unknown as WebSocket, source, document });
    return { socket, remove };
  };
  /** Emits an event and waits until the fan-out has handled it. */
  const emit = async (payload: unknown) => {
    handlers.get('ticks')!(payload);
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
  };
  return { fanout, add, emit, handlers, logged };
}

const user = (n: number): Viewer => ({ userId: `u${n}`, role: Role.USER });
const TICK = 'subscription { tick }';

describe('Fanout', () => {
  it('asks who may hear an event once per distinct viewer, and sends each socket its own id with the same answer', async () => {
    const { add, emit } = setup();
    const asked: string[] = [];
    const hears: Hears<unknown> = (_e, v) => (asked.push(v.userId), v.userId !== 'u2');
    const sockets = [1, 1, 2, 2, 3].map((n) => add(TICK, user(n), hears));
    await emit({ n: 7 });
    expect(asked.sort()).toEqual(['u1', 'u2', 'u3']);
    const got = sockets.map((s) => s.socket.sent.map((m) => JSON.parse(m)));
    expect(got[0]).toEqual([{ id: 'op-1', type: 'next', payload: { data: { tick: 7 } } }]);
    expect(got[1]).toEqual([{ id: 'op-2', type: 'next', payload: { data: { tick: 7 } } }]);
    expect(got[2]).toEqual([]);
    expect(got[3]).toEqual([]);
    expect(got[4]).toEqual([{ id: 'op-5', type: 'next', payload: { data: { tick: 7 } } }]);
  });

  it("executes again per viewer when the answer read the viewer, so nobody gets another's answer", async () => {
    const { add, emit } = setup();
    const a = add('subscription { whoAmI }', user(1));
    const b = add('subscription { whoAmI }', user(2));
    await emit({ n: 1 });
    expect(JSON.parse(a.socket.sent[0]!).payload).toEqual({ data: { whoAmI: 'u1' } });
    expect(JSON.parse(b.socket.sent[0]!).payload).toEqual({ data: { whoAmI: 'u2' } });
  });

  it('closes a socket whose unsent backlog is over the limit (1013) instead of feeding it', async () => {
    const { add, emit } = setup();
    const slow = add(TICK, user(1));
    const fine = add(TICK, user(1));
    slow.socket.bufferedAmount = 1001;
    await emit({ n: 1 });
    expect(slow.socket.sent).toEqual([]);
    expect(slow.socket.closedWith).toBe(1013);
    expect(fine.socket.sent).toHaveLength(1);
  });

  it('yields to the event loop between batches of sends', async () => {
    const { add, handlers } = setup(10);
    const subs = Array.from({ length: 35 }, () => add(TICK, user(1)));
    let sentWhenOtherWorkRan = -1;
    handlers.get('ticks')!({ n: 1 });
    // Work queued after the event, as other I/O would be: it must not wait for all 35 sends.
    setImmediate(() => (sentWhenOtherWorkRan = subs.filter((s) => s.socket.sent.length).length));
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    expect(subs.every((s) => s.socket.sent.length === 1)).toBe(true);
    expect(sentWhenOtherWorkRan).toBeGreaterThan(0);
    expect(sentWhenOtherWorkRan).toBeLessThan(35);
  });

  it('delivers events in the order the bus received them, and nothing after removal', async () => {
    const { add, handlers, fanout } = setup(1);
    const a = add(TICK, user(1));
    const b = add(TICK, user(2));
    for (const n of [1, 2, 3]) handlers.get('ticks')!({ n });
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    expect(a.socket.sent.map((m) => JSON.parse(m).payload.data.tick)).toEqual([1, 2, 3]);
    a.remove();
    a.remove(); // idempotent
    expect(fanout.size).toBe(1);
    handlers.get('ticks')!({ n: 4 });
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    expect(a.socket.sent).toHaveLength(3);
    expect(b.socket.sent).toHaveLength(4);
    b.remove();
    expect(handlers.has('ticks')).toBe(false); // the last one gone, the topic is no longer heard
  });
});
