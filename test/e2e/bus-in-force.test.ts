import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { CHANNEL, EventBus } from '../../src/events/bus.js';
import { createLogger } from '../../src/shared/logger.js';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * EventBus.inForce: a change answers once this instance has heard its own event back, so
 * what the instance keeps of the changed thing is gone before the caller's next request.
 * The event is sent from another connection, as a committed transaction's NOTIFY is.
 */
let s: TestServer;
let bus: EventBus;
let other: pg.Client;

const notify = (payload: unknown) =>
  other.query('SELECT pg_notify($1, $2)', [CHANNEL, JSON.stringify({ topic: 'test.changed', payload })]);

beforeAll(async () => {
  s = await startTestServer();
  bus = new EventBus(s.dbUrl, createLogger('silent'));
  await bus.start();
  other = new pg.Client({ connectionString: s.dbUrl });
  await other.connect();
});
afterAll(async () => {
  await other?.end();
  await bus?.close();
  await s?.close();
});

describe('EventBus.inForce', () => {
  it('answers only once the event it published has been heard on this instance', async () => {
    const order: string[] = [];
    const off = bus.on('test.changed', (p) => order.push(`heard ${(p as { id: string }).id}`));
    const result = await bus.inForce(
      'test.changed',
      (p) => (p as { id: string }).id === 'a',
      async () => {
        // Sent, not awaited: the events arrive after fn has returned, so only waiting for them orders them first.
        void notify({ id: 'b' }); // another change's event does not count
        void notify({ id: 'a' });
        return 'done';
      },
    );
    order.push('answered');
    off();
    expect(result).toBe('done');
    expect(order).toEqual(['heard b', 'heard a', 'answered']);
  });

  it('answers at once when nothing was published, and after its limit when nothing is heard', async () => {
    let t = Date.now();
    await bus.inForce(
      'test.changed',
      () => true,
      async () => 1,
      () => false,
      10_000,
    );
    expect(Date.now() - t).toBeLessThan(1000);
    t = Date.now();
    await bus.inForce(
      'test.changed',
      () => false,
      async () => 1,
      () => true,
      300,
    );
    expect(Date.now() - t).toBeGreaterThanOrEqual(290);
  });
});
