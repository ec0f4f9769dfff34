import sql from 'sql-template-tag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Session } from '../../../src/modules/identity/session.entity.js';
import { User } from '../../../src/modules/identity/user.entity.js';
import { Loaders } from '../../../src/shared/loaders.js';
import { readModel } from '../../../src/shared/read-model.js';
import { CreateInvitationDocument, LoginDocument } from '../../generated/graphql.js';
import { ok } from '../../support/client.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { createUser, firstAdmin, PASSWORD, type TestUser } from '../../support/users.js';

/**
 * DataLoaders: the SQL statements of an operation grow with its depth, never with its
 * rows. Statements are counted on the read path's real pool while an operation runs.
 */
let s: TestServer;
let admin: TestUser;
beforeAll(async () => {
  s = await startTestServer();
  admin = await firstAdmin(s);
});
afterAll(() => s?.close());

/** Records the text of every statement sent through the read pool until `stop()`. */
function recordStatements() {
  const pool = s.app.runtime.db.pool as unknown as { query: (...args: unknown[]) => unknown };
  const original = pool.query;
  const texts: string[] = [];
  pool.query = function (this: unknown, ...args: unknown[]) {
    const q = args[0] as string | { text: string };
    texts.push(typeof q === 'string' ? q : q.text);
    return original.apply(this, args);
  };
  return {
    texts,
    matching: (re: RegExp) => texts.filter((t) => re.test(t)),
    stop: () => void (pool.query = original),
  };
}

async function whileRecording<T>(fn: () => Promise<T>) {
  const rec = recordStatements();
  try {
    return { result: await fn(), statements: rec.texts, matching: rec.matching };
  } finally {
    rec.stop();
  }
}

const USERS_BY_ID = /FROM "users" t WHERE t\."id" = ANY\(/;
const someUsers = (n: number) => Promise.all(Array.from({ length: n }, () => createUser(s, admin)));

describe('loaders behind GraphQL fields', () => {
  it('loads many aliased user(id:) fields with one statement, in order, with null for an unknown id', async () => {
    const users = await someUsers(10);
    const missing = '00000000-0000-4000-8000-000000000000';
    const query = `{ ${users.map((u, i) => `u${i}: user(id: "${u.id}") { id username }`).join(' ')} none: user(id: "${missing}") { id username } }`;
    const { result, matching } = await whileRecording(() => ok(s.url, query, undefined, admin.token));
    expect(matching(USERS_BY_ID)).toHaveLength(1);
    users.forEach((u, i) => expect(result[`u${i}`]).toEqual({ id: u.id, username: u.username }));
    expect(result.none).toBeNull();
  });

  it('sends as many statements for one aliased user(id:) as for ten', async () => {
    const users = await someUsers(10);
    const aliases = (n: number) =>
      `{ ${users
        .slice(0, n)
        .map((u, i) => `u${i}: user(id: "${u.id}") { id name }`)
        .join(' ')} }`;
    const one = await whileRecording(() => ok(s.url, aliases(1), undefined, admin.token));
    const ten = await whileRecording(() => ok(s.url, aliases(10), undefined, admin.token));
    expect(ten.statements.length).toBe(one.statements.length);
  });

  it('selects only the columns the operation asks for', async () => {
    const { matching } = await whileRecording(() => ok(s.url, '{ me { id username } }', undefined, admin.token));
    const [statement] = matching(USERS_BY_ID);
    expect(statement).toMatch(/"username"/);
    expect(statement).not.toMatch(/"email"|"password_hash"|"totp_secret"/);
  });

  it('answers users(first: N) and me with the same number of statements whatever N', async () => {
    await someUsers(12);
    const page = (n: number) => `{ me { id } users(first: ${n}) { edges { node { id email } } } }`;
    const small = await whileRecording(() => ok(s.url, page(2), undefined, admin.token));
    const large = await whileRecording(() => ok(s.url, page(12), undefined, admin.token));
    expect(large.result.users.edges).toHaveLength(12);
    expect(large.statements.length).toBe(small.statements.length);
    // totalCount costs one more statement, and only when asked for.
    const counted = await whileRecording(() =>
      ok(s.url, `{ users(first: 12) { totalCount edges { node { id } } } }`, undefined, admin.token),
    );
    const uncounted = await whileRecording(() =>
      ok(s.url, `{ users(first: 12) { edges { node { id } } } }`, undefined, admin.token),
    );
    expect(counted.statements.length).toBe(uncounted.statements.length + 1);
  });
});

describe('the loader factories', () => {
  /** Every user gets a second session, so each has two. */
  async function usersWithTwoSessions(n: number) {
    const users = await someUsers(n);
    await Promise.all(users.map((u) => ok(s.url, LoginDocument, { input: { login: u.username, password: PASSWORD } })));
    return users;
  }

  it('byForeignKey: gives each parent its rows with one statement for all parents', async () => {
    const users = await usersWithTwoSessions(3);
    const loaders = new Loaders(s.app.runtime.db);
    const { result, statements } = await whileRecording(() =>
      Promise.all(
        users.map((u) =>
          loaders.byForeignKey<{ id: string; user: string }>(readModel(Session), 'user', ['id', 'user']).load(u.id),
        ),
      ),
    );
    expect(statements).toHaveLength(1);
    // All parents in one array parameter (unnest: the rows of each are capped at NESTED_LIST_CAP).
    expect(statements[0]).toMatch(/unnest\(\$1::uuid\[\]\)/);
    result.forEach((sessions, i) => {
      expect(sessions).toHaveLength(2);
      for (const row of sessions) expect(row.user).toBe(users[i]!.id);
    });
  });

  it('pagePerParent: gives each parent its first page with one statement, and all their counts with one more', async () => {
    const users = await usersWithTwoSessions(3);
    const loaders = new Loaders(s.app.runtime.db);
    const pages = await whileRecording(() =>
      Promise.all(
        users.map((u) =>
          loaders
            .pagePerParent<{ id: string; user: string }>(readModel(Session), 'user', ['id'], { first: 1 })
            .load(u.id),
        ),
      ),
    );
    expect(pages.statements).toHaveLength(1);
    for (const conn of pages.result) {
      expect(conn.edges).toHaveLength(1);
      expect(conn.pageInfo.hasNextPage).toBe(true);
    }
    const counts = await whileRecording(() => Promise.all(pages.result.map((c) => c.totalCount)));
    expect(counts.result).toEqual([2, 2, 2]);
    expect(counts.statements).toHaveLength(1);

    // The next page of each, from its own cursor, is the parent's other row.
    const next = await Promise.all(
      users.map((u, i) =>
        new Loaders(s.app.runtime.db)
          .pagePerParent<{ id: string }>(readModel(Session), 'user', ['id'], {
            first: 1,
            after: pages.result[i]!.pageInfo.endCursor,
          })
          .load(u.id),
      ),
    );
    next.forEach((conn, i) => {
      expect(conn.edges).toHaveLength(1);
      expect(conn.edges[0]!.node.id).not.toBe(pages.result[i]!.edges[0]!.node.id);
    });
  });

  it('manyToMany: reaches rows through a pivot with one statement for all keys', async () => {
    const inviters = await Promise.all([createUser(s, admin, 'ADMIN'), createUser(s, admin, 'ADMIN')]);
    const invitations = await Promise.all(
      [0, 1, 0].map(async (k) => {
        const r = await ok(
          s.url,
          CreateInvitationDocument,
          { input: { role: 'USER', maxUses: 1, expiresAt: new Date(Date.now() + 3600_000).toISOString() } },
          inviters[k]!.token,
        );
        return { id: r.createInvitation.invitation.id, inviter: inviters[k]!.id };
      }),
    );
    const loaders = new Loaders(s.app.runtime.db);
    const { result, statements } = await whileRecording(() =>
      Promise.all(
        invitations.map((inv) =>
          loaders
            .manyToMany<{ id: string; username: string }>(
              readModel(User),
              { table: sql`"invitations"`, from: 'id', to: 'created_by_id' },
              ['id', 'username'],
            )
            .load(inv.id),
        ),
      ),
    );
    expect(statements).toHaveLength(1);
    result.forEach((rows, i) => expect(rows.map((r) => r.id)).toEqual([invitations[i]!.inviter]));
  });

  it('byId: caches per request, so a key asked for twice is fetched once', async () => {
    const [user] = await someUsers(1);
    const loaders = new Loaders(s.app.runtime.db);
    const byId = () => loaders.byId<{ id: string }>(readModel(User), ['id']);
    const first = await whileRecording(() => Promise.all([byId().load(user!.id), byId().load(user!.id)]));
    const again = await whileRecording(() => byId().load(user!.id));
    expect(first.statements).toHaveLength(1);
    expect(first.statements[0]).toMatch(USERS_BY_ID);
    expect(again.statements).toHaveLength(0);
  });
});
