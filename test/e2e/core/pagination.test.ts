import sql from 'sql-template-tag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { User } from '../../../src/modules/identity/user.entity.js';
import { encodeCursor, NEWEST_FIRST, paginate, type PageArgs } from '../../../src/shared/connection.js';
import { readModel } from '../../../src/shared/read-model.js';
import { UpdateMeDocument, UsersPageDocument, type UsersPageQueryVariables } from '../../generated/graphql.js';
import { codes, gql, ok } from '../../support/client.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { createUser, firstAdmin, unique, type TestUser } from '../../support/users.js';

/**
 * Keyset pagination (src/shared/connection.ts) through the `users` connection, and
 * directly where a sort key other than id is needed. Each test pages over users it
 * made, found by a tag in their names.
 */
let s: TestServer;
let admin: TestUser;
beforeAll(async () => {
  s = await startTestServer();
  admin = await firstAdmin(s);
});
afterAll(() => s?.close());

/** `n` users whose names carry a fresh tag; returns the tag. */
async function taggedUsers(n: number, tag = unique('tag')): Promise<string> {
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const u = await createUser(s, admin);
      await ok(s.url, UpdateMeDocument, { input: { name: `${tag} ${i}` } }, u.token);
    }),
  );
  return tag;
}

const page = async (tag: string, args: Omit<UsersPageQueryVariables, 'where'>) =>
  (await ok(s.url, UsersPageDocument, { ...args, where: { search: tag } }, admin.token)).users;
const ids = (p: Awaited<ReturnType<typeof page>>) => p.edges.map((e) => e.node.id);

describe('keyset pagination', () => {
  it('walks forward with first/after in pages that join up with no duplicates or gaps', async () => {
    const tag = await taggedUsers(7);
    const all = ids(await page(tag, { first: 100 }));
    expect(all).toHaveLength(7);
    expect([...all].sort()).toEqual(all); // ordered by id

    const p1 = await page(tag, { first: 3 });
    const p2 = await page(tag, { first: 3, after: p1.pageInfo.endCursor });
    const p3 = await page(tag, { first: 3, after: p2.pageInfo.endCursor });
    expect([ids(p1), ids(p2), ids(p3)]).toEqual([all.slice(0, 3), all.slice(3, 6), all.slice(6)]);
    expect([p1, p2, p3].map((p) => [p.pageInfo.hasPreviousPage, p.pageInfo.hasNextPage])).toEqual([
      [false, true],
      [true, true],
      [true, false],
    ]);
    for (const p of [p1, p2, p3]) {
      expect(p.totalCount).toBe(7);
      expect(p.pageInfo.startCursor).toBe(p.edges[0]!.cursor);
      expect(p.pageInfo.endCursor).toBe(p.edges.at(-1)!.cursor);
    }
  });

  it('walks backward with last/before and meets the same order', async () => {
    const tag = await taggedUsers(7);
    const all = ids(await page(tag, { first: 100 }));

    const p1 = await page(tag, { last: 3 });
    const p2 = await page(tag, { last: 3, before: p1.pageInfo.startCursor });
    const p3 = await page(tag, { last: 3, before: p2.pageInfo.startCursor });
    expect([ids(p3), ids(p2), ids(p1)]).toEqual([all.slice(0, 1), all.slice(1, 4), all.slice(4)]);
    expect([p1, p2, p3].map((p) => [p.pageInfo.hasPreviousPage, p.pageInfo.hasNextPage])).toEqual([
      [true, false],
      [true, true],
      [false, true],
    ]);
  });

  it('gives the rows between two cursors with after and before together', async () => {
    const tag = await taggedUsers(6);
    const full = await page(tag, { first: 100 });
    const between = await page(tag, { first: 10, after: full.edges[1]!.cursor, before: full.edges[5]!.cursor });
    expect(ids(between)).toEqual(ids(full).slice(2, 5));
  });

  it('neither repeats nor skips rows that existed throughout when rows are added between pages', async () => {
    const tag = await taggedUsers(6);
    const before = ids(await page(tag, { first: 100 }));
    const seen: string[] = [];
    let p = await page(tag, { first: 2 });
    seen.push(...ids(p));
    await taggedUsers(3, tag); // land anywhere in id order
    while (p.pageInfo.hasNextPage) {
      p = await page(tag, { first: 2, after: p.pageInfo.endCursor });
      seen.push(...ids(p));
    }
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of before) expect(seen).toContain(id);
  });

  it('answers a garbled or forged cursor as BAD_USER_INPUT, never as a server error', async () => {
    const forged = [
      'not a cursor!',
      encodeCursor([]), // wrong length
      encodeCursor(['not-a-uuid']), // right shape, value that cannot be read back as the sort key
      encodeCursor([{ id: 1 } as never]),
    ];
    for (const cursor of forged) {
      for (const args of [
        { first: 2, after: cursor },
        { last: 2, before: cursor },
      ]) {
        const r = await gql(s.url, UsersPageDocument, args, admin.token);
        expect(codes(r), cursor).toEqual(['BAD_USER_INPUT']);
        expect(r.errors![0]!.message).toBe('cursor: is not a cursor of this list');
      }
    }
  });

  it('refuses first and last together', async () => {
    expect(codes(await gql(s.url, UsersPageDocument, { first: 2, last: 2 }, admin.token))).toEqual(['BAD_USER_INPUT']);
  });

  it('pages without gaps or repeats over a timestamp sort key whose values share a millisecond', async () => {
    const tag = await taggedUsers(5);
    // Microseconds apart: what PostgreSQL keeps and a JavaScript Date cannot hold.
    await s.sql(
      `UPDATE users SET created_at = '2030-01-01T00:00:00.123Z'::timestamptz + (substr(name, length($1) + 2)::int * interval '1 microsecond') WHERE name LIKE $1 || ' %'`,
      [tag],
    );
    const list = (p: PageArgs) =>
      paginate<{ id: string }>(
        s.app.runtime.db,
        { model: readModel(User), fields: ['id'], where: sql`t.name LIKE ${`${tag} %`}`, sort: NEWEST_FIRST },
        p,
      );
    const all = (await list({ first: 100 })).edges.map((e) => e.node.id);
    expect(all).toHaveLength(5);

    const forward: string[] = [];
    let p = await list({ first: 2 });
    forward.push(...p.edges.map((e) => e.node.id));
    while (p.pageInfo.hasNextPage) {
      p = await list({ first: 2, after: p.pageInfo.endCursor });
      forward.push(...p.edges.map((e) => e.node.id));
    }
    expect(forward).toEqual(all);

    const backward: string[] = [];
    p = await list({ last: 2 });
    backward.unshift(...p.edges.map((e) => e.node.id));
    while (p.pageInfo.hasPreviousPage) {
      p = await list({ last: 2, before: p.pageInfo.startCursor });
      backward.unshift(...p.edges.map((e) => e.node.id));
    }
    expect(backward).toEqual(all);
  });
});
