import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  CreateTaskDocument,
  SendMessageDocument,
  StartConversationDocument,
  SystemLogsDocument,
} from '../../generated/graphql.js';
import { codes, gql, ok, wsClient, wsExecute } from '../../support/client.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { firstAdmin, unique, type TestUser } from '../../support/users.js';
import { until } from '../../support/wait.js';

/**
 * PostgreSQL cannot store U+0000 (text, jsonb), and a lone surrogate has no UTF-8 form.
 * Every text input is refused with BAD_USER_INPUT before the operation runs, over HTTP
 * and WebSocket, whether it comes as a variable, a literal, or inside a JSON scalar.
 */
let s: TestServer;
let admin: TestUser;
let ws: Client;

beforeAll(async () => {
  s = await startTestServer({ env: { SYSTEM_LOG_LEVEL: 'warn' } });
  admin = await firstAdmin(s);
  ws = wsClient(s.wsUrl, admin.token);
});
afterAll(async () => {
  await ws?.dispose();
  await s?.close();
});

const tasksNamed = async (title: string) =>
  (await s.sql<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE title LIKE $1`, [`${title}%`]))[0]!.n;

describe('text PostgreSQL cannot store', () => {
  it('is refused as BAD_USER_INPUT in a variable, naming where, over HTTP and WebSocket', async () => {
    const title = unique('nul-');
    const input = { title: `${title}\u0000tail` };
    const http = await gql(s.url, CreateTaskDocument, { input }, admin.token);
    expect(codes(http)).toEqual(['BAD_USER_INPUT']);
    expect(http.status).toBe(400);
    expect(http.errors![0]!.message).toBe('Variable "$input.title" contains U+0000, which cannot be stored');
    const overWs = await wsExecute(ws, CreateTaskDocument, { input });
    expect(codes(overWs)).toEqual(['BAD_USER_INPUT']);
    expect(overWs.errors![0]!.message).toBe(http.errors![0]!.message);
    expect(await tasksNamed(title)).toBe(0);
  });

  it('is refused in a string literal of the document', async () => {
    const title = unique('lit-');
    const r = await gql(
      s.url,
      `mutation { createTask(input: { title: "${title}\\u0000" }) { id } }`,
      undefined,
      admin.token,
    );
    expect(codes(r)).toEqual(['BAD_USER_INPUT']);
    expect(r.errors![0]!.message).toMatch(/^A string in the document contains U\+0000/);
    expect(await tasksNamed(title)).toBe(0);
  });

  it('is refused inside a JSON scalar, as a value or as a key, as a variable or a literal', async () => {
    const title = unique('json-');
    for (const metadata of [{ note: 'a\u0000b' }, { nested: [{ deep: '\u0000' }] }, { 'k\u0000': 1 }]) {
      const r = await gql(s.url, CreateTaskDocument, { input: { title, metadata } }, admin.token);
      expect(codes(r)).toEqual(['BAD_USER_INPUT']);
      expect(r.errors![0]!.message).toMatch(/^Variable "\$input\.metadata/);
    }
    const literal = await gql(
      s.url,
      `mutation { createTask(input: { title: "${title}", metadata: { note: "x\\u0000" } }) { id } }`,
      undefined,
      admin.token,
    );
    expect(codes(literal)).toEqual(['BAD_USER_INPUT']);
    expect(await tasksNamed(title)).toBe(0);
  });

  it('refuses a lone surrogate, which would otherwise be stored as U+FFFD, and keeps a real pair', async () => {
    const title = unique('sur-');
    const r = await gql(s.url, CreateTaskDocument, { input: { title: `${title}\ud800` } }, admin.token);
    expect(codes(r)).toEqual(['BAD_USER_INPUT']);
    expect(r.errors![0]!.message).toBe('Variable "$input.title" contains a lone surrogate, which cannot be stored');
    const kept = await ok(s.url, CreateTaskDocument, { input: { title: `${title} 😀` } }, admin.token);
    expect(kept.createTask.title).toBe(`${title} 😀`);
  });

  it('answers a prompt holding a NUL as BAD_USER_INPUT, short or long, before any AI call is made', async () => {
    const { startConversation } = await ok(s.url, StartConversationDocument, { input: {} }, admin.token);
    for (const content of ['hello\u0000', `${'x'.repeat(2500)}\u0000 after the first 2,000 characters`]) {
      const r = await gql(
        s.url,
        SendMessageDocument,
        { input: { conversationId: startConversation.id, content } },
        admin.token,
      );
      expect(codes(r)).toEqual(['BAD_USER_INPUT']);
    }
    expect(await s.sql(`SELECT 1 FROM prompt_logs WHERE conversation_id = $1`, [startConversation.id])).toEqual([]);
    expect(await s.sql(`SELECT 1 FROM messages WHERE conversation_id = $1`, [startConversation.id])).toEqual([]);
  });
});

describe('the system-log sink', () => {
  it('keeps a line quoting a NUL (escaped) and the other lines of its batch', async () => {
    const tag = unique('sink-');
    const log = s.app.runtime.logger;
    log.warn({ module: 'probe', tag }, `${tag} before`);
    log.warn(
      { module: 'probe', tag, input: 'bad\u0000input', ['key\u0000']: 'x', lone: '\udc00' },
      `${tag} quoting \u0000 a NUL`,
    );
    log.warn({ module: 'probe', tag }, `${tag} after`);
    const find = async () =>
      (await ok(s.url, SystemLogsDocument, { first: 20, where: { search: tag } }, admin.token)).systemLogs;
    await until(async () => (await find()).totalCount === 3, 'the three lines kept');
    const lines = (await find()).edges.map((e) => e.node);
    const quoting = lines.find((l) => l.message.includes('quoting'))!;
    expect(quoting.message).toBe(`${tag} quoting \\u0000 a NUL`);
    expect(quoting.context).toMatchObject({ input: 'bad\\u0000input', 'key\\u0000': 'x', lone: '\ufffd' });
  });

  it('drops only the line the database refuses, not the rest of its batch', async () => {
    // A real refusal by PostgreSQL for one line (a constraint added for the test).
    await s.sql(`ALTER TABLE system_logs ADD CONSTRAINT no_poison CHECK (message NOT LIKE '%poison%')`);
    try {
      const tag = unique('batch-');
      const log = s.app.runtime.logger;
      const dropped = s.app.runtime.services.systemLogs.dropped;
      log.warn({ module: 'probe' }, `${tag} one`);
      log.warn({ module: 'probe' }, `${tag} poison`);
      log.warn({ module: 'probe' }, `${tag} two`);
      await s.app.runtime.services.systemLogs.flush();
      const kept = async () =>
        (
          await s.sql<{ message: string }>(`SELECT message FROM system_logs WHERE message LIKE $1 ORDER BY message`, [
            `${tag}%`,
          ])
        ).map((r) => r.message);
      await until(async () => (await kept()).length === 2, 'the two good lines kept');
      expect(await kept()).toEqual([`${tag} one`, `${tag} two`]);
      expect(s.app.runtime.services.systemLogs.dropped).toBe(dropped + 1);
    } finally {
      await s.sql(`ALTER TABLE system_logs DROP CONSTRAINT no_poison`);
    }
  });
});
