import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { USER_UPDATED } from '../../../src/modules/identity/identity.events.js';
import { inTransaction, type Scope } from '../../../src/shared/scope.js';
import { UpdateMeDocument, UserUpdatedDocument } from '../../generated/graphql.js';
import { ok, subscribe, wsClient } from '../../support/client.js';
import { sentinel } from '../../support/sentinel.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { createUser, firstAdmin, type TestUser } from '../../support/users.js';
import { busListeners } from '../../support/wait.js';

/**
 * The realtime bus across instances: two Steward servers on one database, as behind a
 * load balancer. An event leaves with its transaction's COMMIT (pg_notify on the
 * transaction's connection) and reaches every instance through LISTEN.
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

const scopeOn = (s: TestServer): Scope => ({
  em: s.app.runtime.orm.em.fork() as EntityManager,
  viewer: null,
  meta: { requestId: 'test-rollback', ip: null, userAgent: null },
});

describe('the realtime bus across instances', () => {
  it('delivers a mutation made on one instance to a subscriber connected to another', async () => {
    const user = await createUser(a, admin);
    const ws = wsClient(b.wsUrl, user.token);
    const onB = busListeners(b);
    const events = subscribe(ws, UserUpdatedDocument, { id: user.id });
    await onB.registered();

    await ok(a.url, UpdateMeDocument, { input: { name: 'Seen on B' } }, user.token);
    expect(await events.next()).toEqual({
      userUpdated: { id: user.id, name: 'Seen on B', role: 'USER', isBlocked: false },
    });
    await ws.dispose();
  });

  it('delivers to subscribers on every instance, the one that made the change included', async () => {
    const user = await createUser(a, admin);
    const wsA = wsClient(a.wsUrl, admin.token);
    const wsB = wsClient(b.wsUrl, admin.token);
    const onA = busListeners(a);
    const onB = busListeners(b);
    const onInstanceA = subscribe(wsA, UserUpdatedDocument, { id: user.id });
    const onInstanceB = subscribe(wsB, UserUpdatedDocument, { id: user.id });
    await Promise.all([onA.registered(), onB.registered()]);

    await ok(b.url, UpdateMeDocument, { input: { name: 'Everywhere' } }, user.token);
    expect((await onInstanceA.next()).userUpdated.name).toBe('Everywhere');
    expect((await onInstanceB.next()).userUpdated.name).toBe('Everywhere');
    await Promise.all([wsA.dispose(), wsB.dispose()]);
  });

  it('delivers nothing, anywhere, for an event published in a transaction that rolls back', async () => {
    const user = await createUser(a, admin);
    const wsA = wsClient(a.wsUrl, admin.token);
    const wsB = wsClient(b.wsUrl, admin.token);
    const onA = busListeners(a);
    const onB = busListeners(b);
    const onInstanceA = subscribe(wsA, UserUpdatedDocument, { id: user.id });
    const onInstanceB = subscribe(wsB, UserUpdatedDocument, { id: user.id });
    await Promise.all([onA.registered(), onB.registered()]);

    const rt = a.app.runtime;
    await expect(
      inTransaction(scopeOn(a), async (tx) => {
        await rt.bus.publish(tx.em, USER_UPDATED, { id: user.id });
        throw new Error('rollback');
      }),
    ).rejects.toThrow('rollback');

    // A later, committed event on the same topic proves both subscribers were live all along;
    // NOTIFYs arrive in commit order, so the rolled-back one would have come first.
    await ok(a.url, UpdateMeDocument, { input: { name: 'Committed' } }, user.token);
    for (const sub of [onInstanceA, onInstanceB]) {
      expect(await sub.next()).toMatchObject({ userUpdated: { id: user.id, name: 'Committed' } });
      expect(sub.received).toHaveLength(1);
    }
    await Promise.all([wsA.dispose(), wsB.dispose()]);
  });

  it('holds an event published in a transaction until the transaction commits', async () => {
    const user = await createUser(a, admin);
    const other = await createUser(a, admin);
    const ws = wsClient(b.wsUrl, admin.token);
    const onB = busListeners(b);
    const events = subscribe(ws, UserUpdatedDocument, { id: user.id });
    await onB.registered();

    const rt = a.app.runtime;
    await inTransaction(scopeOn(a), async (tx) => {
      await rt.bus.publish(tx.em, USER_UPDATED, { id: user.id });
      // Published, not yet committed: a sentinel committed meanwhile reaches the same connection first.
      await sentinel(b, ws, other);
      expect(events.received).toEqual([]);
    });
    expect(await events.next()).toMatchObject({ userUpdated: { id: user.id } });
    await ws.dispose();
  });

  it('gives each subscriber only the events it may read, on whichever instance it is', async () => {
    const user = await createUser(a, admin);
    const other = await createUser(a, admin);
    const wsOwn = wsClient(b.wsUrl, user.token);
    const wsOther = wsClient(b.wsUrl, other.token);
    const onB = busListeners(b);
    const own = subscribe(wsOwn, UserUpdatedDocument, { id: user.id });
    const foreign = subscribe(wsOther, UserUpdatedDocument, { id: user.id });
    const all = subscribe(wsOther, UserUpdatedDocument, {}); // no id: only what `other` may read
    await onB.registered(3);

    await ok(a.url, UpdateMeDocument, { input: { name: 'Private' } }, user.token);
    expect((await own.next()).userUpdated.name).toBe('Private');
    // The sentinel: other's own change, which `all` must hear, and before it nothing of user's.
    await ok(a.url, UpdateMeDocument, { input: { name: 'Sentinel' } }, other.token);
    expect(await all.next()).toMatchObject({ userUpdated: { id: other.id, name: 'Sentinel' } });
    expect(foreign.received).toEqual([]);
    expect(all.received).toHaveLength(1);
    await Promise.all([wsOwn.dispose(), wsOther.dispose()]);
  });
});
