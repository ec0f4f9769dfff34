import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  CreateKnowledgeEntryDocument,
  DeactivateKnowledgeEntryDocument,
  KnowledgeEntriesDocument,
  KnowledgeEntryDocument,
  SearchKnowledgeDocument,
  UpdateKnowledgeEntryDocument,
  type CreateKnowledgeEntryInput,
  type KnowledgeEntryWhere,
} from '../generated/graphql.js';
import { codes, gql, ok } from '../support/client.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, unique, type TestUser } from '../support/users.js';

let s: TestServer;
let admin: TestUser;
let reader: TestUser;
beforeAll(async () => {
  s = await startTestServer();
  admin = await firstAdmin(s);
  reader = await createUser(s, admin);
});
afterAll(() => s?.close());

/** A word no other test's entries contain, so each test searches only its own entries. */
const word = () => `kb${randomBytes(4).toString('hex')}`;
const create = (input: CreateKnowledgeEntryInput, by: TestUser = admin) =>
  gql(s.url, CreateKnowledgeEntryDocument, { input }, by.token);
const created = async (input: CreateKnowledgeEntryInput) =>
  (await ok(s.url, CreateKnowledgeEntryDocument, { input }, admin.token)).createKnowledgeEntry;
const search = async (viewer: TestUser, query: string, category?: string, first?: number) =>
  (await ok(s.url, SearchKnowledgeDocument, { query, category, first }, viewer.token)).searchKnowledge;
const titles = async (viewer: TestUser, query: string, category?: string) =>
  (await search(viewer, query, category)).map((h) => h.entry.title);
const listed = async (viewer: TestUser, where: KnowledgeEntryWhere, first = 50) =>
  (await ok(s.url, KnowledgeEntriesDocument, { first, where }, viewer.token)).knowledgeEntries;

describe('writing the knowledge base', () => {
  it('lets an admin create, update and deactivate entries, each audited', async () => {
    const vid = unique('kb_');
    const k = await created({
      title: 'Hair Styling Tips',
      content: 'For curly hair, use a diffuser on low heat.',
      category: 'hair_education',
      metadata: { source: 'styling handbook', tags: ['curly'] },
      externalVectorId: vid,
    });
    expect(k).toMatchObject({
      title: 'Hair Styling Tips',
      category: 'hair_education',
      metadata: { source: 'styling handbook', tags: ['curly'] },
      externalVectorId: vid,
      active: true,
    });

    const updated = (
      await ok(
        s.url,
        UpdateKnowledgeEntryDocument,
        { input: { id: k.id, content: 'For curly hair, diffuse on low heat and scrunch.', category: null } },
        admin.token,
      )
    ).updateKnowledgeEntry;
    expect(updated).toMatchObject({
      id: k.id,
      title: 'Hair Styling Tips',
      content: 'For curly hair, diffuse on low heat and scrunch.',
      category: null,
      externalVectorId: vid,
      metadata: { source: 'styling handbook' },
    });

    const off = (await ok(s.url, DeactivateKnowledgeEntryDocument, { id: k.id }, admin.token)).deactivateKnowledgeEntry;
    expect(off.active).toBe(false);
    const back = (await ok(s.url, UpdateKnowledgeEntryDocument, { input: { id: k.id, active: true } }, admin.token))
      .updateKnowledgeEntry;
    expect(back.active).toBe(true);

    const audits = await s.sql<{ action: string; actor_id: string }>(
      `SELECT action, actor_id FROM audit_events WHERE entity_id = $1 ORDER BY created_at, id`,
      [k.id],
    );
    expect(audits.map((a) => a.action)).toEqual([
      'knowledge.create',
      'knowledge.update',
      'knowledge.deactivate',
      'knowledge.update',
    ]);
    expect(audits.every((a) => a.actor_id === admin.id)).toBe(true);
  });

  it('refuses writes by anyone but an admin', async () => {
    const observer = await createUser(s, admin, 'OBSERVER');
    const k = await created({
      title: 'Business Growth Strategies',
      content: 'To grow your business, focus on returning clients.',
    });
    for (const by of [reader, observer]) {
      expect(codes(await create({ title: 'Mine', content: 'Mine' }, by))).toEqual(['FORBIDDEN']);
      expect(
        codes(await gql(s.url, UpdateKnowledgeEntryDocument, { input: { id: k.id, title: 'Hijacked' } }, by.token)),
      ).toEqual(['FORBIDDEN']);
      expect(codes(await gql(s.url, DeactivateKnowledgeEntryDocument, { id: k.id }, by.token))).toEqual(['FORBIDDEN']);
    }
    expect((await ok(s.url, KnowledgeEntryDocument, { id: k.id }, reader.token)).knowledgeEntry).toMatchObject({
      title: 'Business Growth Strategies',
      active: true,
    });
  });

  it('keeps external vector ids unique: a second entry or an update to a taken id is a CONFLICT', async () => {
    const vid = unique('kb_');
    await created({ title: 'First', content: 'One', externalVectorId: vid });
    expect(codes(await create({ title: 'Second', content: 'Two', externalVectorId: vid }))).toEqual(['CONFLICT']);
    const other = await created({ title: 'Third', content: 'Three', externalVectorId: unique('kb_') });
    expect(
      codes(
        await gql(s.url, UpdateKnowledgeEntryDocument, { input: { id: other.id, externalVectorId: vid } }, admin.token),
      ),
    ).toEqual(['CONFLICT']);
    const cleared = (
      await ok(s.url, UpdateKnowledgeEntryDocument, { input: { id: other.id, externalVectorId: null } }, admin.token)
    ).updateKnowledgeEntry;
    expect(cleared.externalVectorId).toBeNull();
    expect((await s.sql(`SELECT 1 FROM knowledge_entries WHERE external_vector_id = $1`, [vid])).length).toBe(1);
  });

  it('validates the input and names unknown entries', async () => {
    expect(codes(await create({ title: '', content: 'x' }))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await create({ title: 'x', content: '' }))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await create({ title: 'x', content: 'x', category: 'not a key!' }))).toEqual(['BAD_USER_INPUT']);
    expect(
      codes(await gql(s.url, UpdateKnowledgeEntryDocument, { input: { id: randomUUID(), title: 'x' } }, admin.token)),
    ).toEqual(['NOT_FOUND']);
    expect(codes(await gql(s.url, DeactivateKnowledgeEntryDocument, { id: randomUUID() }, admin.token))).toEqual([
      'NOT_FOUND',
    ]);
  });
});

describe('reading and searching it', () => {
  it('finds entries through English stemming, best match first', async () => {
    const w = word();
    await created({
      title: `${w} styling curly hair`,
      content: `Styling ${w} curls: diffuse, scrunch, and style with a leave-in ${w} cream.`,
      category: 'hair_education',
    });
    await created({
      title: `${w} running a salon`,
      content: `Run ${w} bookings online; grow your business with returning clients.`,
      category: 'business_mentorship',
    });
    await created({
      title: `Colour ${w}`,
      content: 'Permanent colour needs a strand test first.',
      category: 'hair_education',
    });

    expect(await titles(reader, `${w} styles`)).toEqual([`${w} styling curly hair`]); // styles ~ styling ~ style
    expect(await titles(reader, `${w} runs`)).toEqual([`${w} running a salon`]); // runs ~ running ~ run
    expect(await titles(reader, w)).toHaveLength(3);
    expect((await titles(reader, w))[0]).toBe(`${w} styling curly hair`); // the most occurrences ranks first
    const hits = await search(reader, w);
    expect(hits.map((h) => h.rank)).toEqual([...hits.map((h) => h.rank)].sort((a, b) => b - a));
    expect(hits.every((h) => h.rank > 0)).toBe(true);

    // Web search syntax and filters.
    expect(await titles(reader, `${w} -salon -colour`)).toEqual([`${w} styling curly hair`]);
    expect(await titles(reader, `"${w} running"`)).toEqual([`${w} running a salon`]);
    expect(await titles(reader, `${w} salon or ${w} strand`)).toEqual(
      expect.arrayContaining([`${w} running a salon`, `Colour ${w}`]),
    );
    expect((await titles(reader, w, 'hair_education')).sort()).toEqual(
      [`${w} styling curly hair`, `Colour ${w}`].sort(),
    );
    expect(await search(reader, w, undefined, 1)).toHaveLength(1);
    expect(await titles(reader, 'the and of')).toEqual([]); // only stop words: nothing to match
    expect(await titles(reader, '   ')).toEqual([]);
  });

  it('hides deactivated entries from searches and from everyone but admins', async () => {
    const w = word();
    const k = await created({ title: `${w} retired`, content: `Old ${w} advice`, category: 'archive' });
    await ok(s.url, DeactivateKnowledgeEntryDocument, { id: k.id }, admin.token);
    expect(await titles(reader, w)).toEqual([]);
    expect(await titles(admin, w)).toEqual([]); // searches serve the assistant: active entries only
    expect((await ok(s.url, KnowledgeEntryDocument, { id: k.id }, reader.token)).knowledgeEntry).toBeNull();
    expect((await ok(s.url, KnowledgeEntryDocument, { id: k.id }, admin.token)).knowledgeEntry).toMatchObject({
      id: k.id,
      active: false,
    });
    expect((await listed(reader, { category: 'archive' })).totalCount).toBe(0);
    expect((await listed(reader, { category: 'archive', active: false })).totalCount).toBe(0); // the filter is for admins
    expect((await listed(admin, { category: 'archive', active: false })).edges.map((e) => e.node.id)).toEqual([k.id]);
  });

  it('lists entries newest first by category, search or external id, with keyset pages', async () => {
    const category = `c_${randomBytes(3).toString('hex')}`;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push(
        (
          await created({
            title: `Entry ${i}`,
            content: `Numbered entry ${i}`,
            category,
            externalVectorId: `${category}-${i}`,
          })
        ).id,
      );
    const p1 = await listed(reader, { category }, 3);
    expect(p1.totalCount).toBe(5);
    expect(p1.edges.map((e) => e.node.id)).toEqual(ids.slice(2).reverse());
    const p2 = (
      await ok(
        s.url,
        KnowledgeEntriesDocument,
        { first: 3, after: p1.pageInfo.endCursor, where: { category } },
        reader.token,
      )
    ).knowledgeEntries;
    expect(p2.edges.map((e) => e.node.id)).toEqual(ids.slice(0, 2).reverse());
    expect(p2.pageInfo.hasNextPage).toBe(false);
    expect((await listed(reader, { category, search: 'entries' })).totalCount).toBe(5); // stemmed
    expect((await listed(reader, { externalVectorId: `${category}-3` })).edges.map((e) => e.node.id)).toEqual([ids[3]]);
  });

  it('refuses a search page outside 1–50', async () => {
    expect(codes(await gql(s.url, SearchKnowledgeDocument, { query: 'hair', first: 0 }, reader.token))).toEqual([
      'BAD_USER_INPUT',
    ]);
    expect(codes(await gql(s.url, SearchKnowledgeDocument, { query: 'hair', first: 51 }, reader.token))).toEqual([
      'BAD_USER_INPUT',
    ]);
    expect(codes(await gql(s.url, SearchKnowledgeDocument, { query: 'hair' }))).toEqual(['UNAUTHENTICATED']);
  });
});
