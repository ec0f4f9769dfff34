import { randomBytes, randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { SqlClient } from '../../../src/db/sql.js';
import { Scheduler, type JobDefinition } from '../../../src/jobs/scheduler.js';
import { deferred } from '../../support/client.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { createUser, firstAdmin, type TestUser } from '../../support/users.js';
import { until } from '../../support/wait.js';

/**
 * Scheduled jobs run once across instances: two servers share one database, and each
 * test's schedulers are built directly over a server's real pool with a job of the
 * test's own (a unique name, so tests do not share a lease).
 */
let a: TestServer;
let b: TestServer;
let admin: TestUser;
beforeAll(async () => {
  a = await startTestServer();
  b = await startTestServer({ shareDatabaseWith: a });
  admin = await firstAdmin(a);
});
afterAll(async () => {
  await b?.close();
  await a?.close();
});

const schedulerOn = (s: TestServer, jobs: JobDefinition[], db: SqlClient = s.app.runtime.db) =>
  new Scheduler(
    {
      db,
      bus: s.app.runtime.bus,
      logger: s.app.runtime.logger,
      fork: () => s.app.runtime.orm.em.fork() as EntityManager,
    },
    jobs,
  );

const jobName = () => `test.job-${randomBytes(4).toString('hex')}`;

interface JobStateRow {
  locked_until: Date;
  last_started_at: Date | null;
  last_finished_at: Date | null;
  runs: number;
  failures: number;
  last_error: string | null;
  last_owner: string | null;
}
const stateOf = async (name: string) =>
  (await a.sql<JobStateRow>('SELECT * FROM job_state WHERE name = $1', [name]))[0];

describe('scheduled jobs across instances', () => {
  it('runs a job once when two instances ask for it at the same moment', async () => {
    const name = jobName();
    const gate = deferred();
    let runs = 0;
    const job: JobDefinition = {
      name,
      intervalMs: 60_000,
      async run() {
        runs++;
        await gate.promise; // hold the lease while the other instance tries
        return 'done';
      },
    };
    const [onA, onB] = [schedulerOn(a, [job]), schedulerOn(b, [job])];
    const answered: { ran: boolean }[] = [];
    const attempts = Promise.all([onA.runNow(name), onB.runNow(name)].map((p) => p.then((r) => (answered.push(r), r))));
    // The winner holds the lease until the gate opens; the loser must answer meanwhile.
    await until(() => runs === 1 && answered.length === 1, 'one instance to run and the other to be refused');
    expect(answered).toEqual([{ ran: false }]);
    gate.resolve();
    const results = await attempts;
    expect(results.filter((r) => r.ran)).toEqual([{ ran: true, result: 'done' }]);
    expect(results.filter((r) => !r.ran)).toEqual([{ ran: false }]);
    expect(runs).toBe(1);

    const state = await stateOf(name);
    expect(state).toMatchObject({ runs: 1, failures: 0, last_error: null });
    expect(state!.last_finished_at).toBeInstanceOf(Date);
    expect(state!.locked_until.getTime()).toBeLessThanOrEqual(Date.now() + 1000); // released, not held for the lease's 5 minutes
  });

  it('runs a ticking job once per interval although both instances tick', async () => {
    const name = jobName();
    let runs = 0;
    const claims = new Map<string, number>();
    // Count each instance's answered attempts to claim the lease (its only `one` call), on its real pool.
    const counting = (s: TestServer, label: string): SqlClient => ({
      ...s.app.runtime.db,
      one: <T>(q: Parameters<SqlClient['one']>[0]) =>
        s.app.runtime.db.one<T>(q).finally(() => {
          claims.set(label, (claims.get(label) ?? 0) + 1);
        }),
    });
    const job: JobDefinition = { name, intervalMs: 1000, run: async () => void runs++ };
    const onA = schedulerOn(a, [job], counting(a, 'a'));
    const onB = schedulerOn(b, [job], counting(b, 'b'));
    onA.start();
    onB.start();
    try {
      // Both first ticks fall within the first interval (they are spread over at most one
      // interval), so exactly one of them may run.
      await until(() => claims.size === 2, 'both instances to tick');
      expect(runs).toBe(1);
    } finally {
      await Promise.all([onA.stop(), onB.stop()]);
    }
    expect(await stateOf(name)).toMatchObject({ runs: 1 });
  });

  it("lets another instance take over once a crashed holder's lease expires", async () => {
    const name = jobName();
    const never = deferred();
    const crashed = schedulerOn(a, [{ name, intervalMs: 60_000, leaseMs: 400, run: () => never.promise }]);
    let tookOver = 0;
    const survivor = schedulerOn(b, [{ name, intervalMs: 60_000, leaseMs: 400, run: async () => void tookOver++ }]);

    void crashed.runNow(name); // claims the lease, then never finishes: as if its process died
    await until(async () => (await stateOf(name))?.last_started_at != null, 'the first instance to hold the lease');
    expect(await survivor.runNow(name)).toEqual({ ran: false });

    await until(async () => (await survivor.runNow(name)).ran, 'the lease to expire', 3000);
    expect(tookOver).toBe(1);
    const state = await stateOf(name);
    expect(state).toMatchObject({ runs: 1, failures: 0 });

    // The late holder finishing now must not overwrite the new holder's record.
    never.resolve();
    await crashed.stop();
    expect(await stateOf(name)).toEqual(state);
  });

  it('records a failed run, releases its lease, and runs again when asked', async () => {
    const name = jobName();
    let fail = true;
    const scheduler = schedulerOn(a, [
      {
        name,
        intervalMs: 60_000,
        run: async () => {
          if (fail) throw new Error('upstream unavailable');
          return 'recovered';
        },
      },
    ]);
    await expect(scheduler.runNow(name)).rejects.toThrow('upstream unavailable');
    expect(await stateOf(name)).toMatchObject({ runs: 1, failures: 1, last_error: 'upstream unavailable' });
    fail = false;
    expect(await scheduler.runNow(name)).toEqual({ ran: true, result: 'recovered' });
    expect(await stateOf(name)).toMatchObject({ runs: 2, failures: 1, last_error: null });
  });
});

describe('identity.purgeExpiredCredentials', () => {
  it('deletes expired sessions and used or expired password resets, and keeps the rest', async () => {
    const user = await createUser(a, admin);
    const sessions = await a.sql<{ id: string }>('SELECT id FROM sessions WHERE user_id = $1', [user.id]);
    expect(sessions).toHaveLength(1);
    const live = sessions[0]!.id;
    const [expired] = await a.sql<{ id: string }>(
      `INSERT INTO sessions (id, user_id, family_id, refresh_token_hash, expires_at)
       VALUES ($1, $2, $3, $4, now() - interval '1 minute') RETURNING id`,
      [randomUUID(), user.id, randomUUID(), randomBytes(16).toString('hex')],
    );
    const reset = async (expiresIn: string, used: boolean) =>
      (
        await a.sql<{ id: string }>(
          `INSERT INTO password_resets (id, user_id, token_hash, expires_at, used_at)
           VALUES ($1, $2, $3, now() + $4::interval, ${used ? 'now()' : 'NULL'}) RETURNING id`,
          [randomUUID(), user.id, randomBytes(16).toString('hex'), expiresIn],
        )
      )[0]!.id;
    const usedReset = await reset('1 hour', true);
    const expiredReset = await reset('-1 minute', false);
    const pendingReset = await reset('1 hour', false);

    const outcome = await a.app.runtime.scheduler.runNow('identity.purgeExpiredCredentials');
    expect(outcome.ran).toBe(true);
    expect(outcome.result).toMatchObject({ sessions: expect.any(Number), passwordResets: expect.any(Number) });

    const remainingSessions = (
      await a.sql<{ id: string }>('SELECT id FROM sessions WHERE user_id = $1', [user.id])
    ).map((r) => r.id);
    expect(remainingSessions).toEqual([live]);
    expect(remainingSessions).not.toContain(expired!.id);
    const remainingResets = (
      await a.sql<{ id: string }>('SELECT id FROM password_resets WHERE user_id = $1', [user.id])
    ).map((r) => r.id);
    expect(remainingResets).toEqual([pendingReset]);
    expect(remainingResets).not.toContain(usedReset);
    expect(remainingResets).not.toContain(expiredReset);
  });
});
