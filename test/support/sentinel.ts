import { randomUUID } from 'node:crypto';
import type { Client } from 'graphql-ws';

import { ok, subscribe } from './client.js';
import type { TestServer } from './server.js';
import { busListeners } from './wait.js';

/**
 * The proof that an event did NOT reach a connection: a sentinel event that connection MUST
 * receive, published after the one that must not arrive. The fan-out handles events one at a
 * time in the bus's (commit) order and writes each connection's messages in that order, so
 * once the sentinel has arrived, anything published before it that was going to reach the
 * connection has arrived too: the caller then asserts its subscriptions received nothing.
 * Unlike "nothing within N ms", this cannot pass because the event was merely slow.
 *
 * The sentinel is `user`'s own profile change (`updateMe`), heard on a `userUpdated(id)`
 * subscription opened on `client` for the purpose: `client` must be `user`'s connection or an
 * admin's. Returns the sentinel's name (a `userUpdated` subscription of the caller's sees it).
 */
export async function sentinel(s: TestServer, client: Client, user: { id: string; token: string }): Promise<string> {
  const listening = busListeners(s);
  const own = subscribe<{ userUpdated: { id: string; name: string | null } }>(
    client,
    `subscription ($id: ID) { userUpdated(id: $id) { id name } }`,
    { id: user.id },
  );
  try {
    await listening.registered(1);
    const name = `sentinel ${randomUUID()}`;
    await ok(
      s.url,
      `mutation ($input: UpdateMeInput!) { updateMe(input: $input) { id } }`,
      { input: { name } },
      user.token,
    );
    const event = await own.next();
    if (event.userUpdated.name !== name) throw new Error(`expected the sentinel, got ${JSON.stringify(event)}`);
    return name;
  } finally {
    own.dispose();
  }
}
