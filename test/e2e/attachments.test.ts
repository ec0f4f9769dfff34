import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  AttachmentsOfTaskOfDocument,
  CreateFileAttachmentDocument,
  DeleteFileAttachmentDocument,
  FileAttachmentDocument,
} from '../generated/graphql.js';
import { codes, gql, ok } from '../support/client.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, type TestUser } from '../support/users.js';

/** A port free right now, so that PUBLIC_URL can name the server before it starts. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let s: TestServer;
let dir: string;
let admin: TestUser;
let owner: TestUser;
let contributor: TestUser;
let viewer: TestUser;
let stranger: TestUser;
let observer: TestUser;

beforeAll(async () => {
  dir = join(mkdtempSync(join(tmpdir(), 'steward-attachments-')), 'files');
  const port = await freePort();
  s = await startTestServer({
    env: {
      PORT: String(port),
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      ATTACHMENTS_DIR: dir,
      ATTACHMENT_MAX_BYTES: String(4 * 1024 * 1024),
    },
  });
  admin = await firstAdmin(s);
  [owner, contributor, viewer, stranger, observer] = await Promise.all([
    createUser(s, admin),
    createUser(s, admin),
    createUser(s, admin),
    createUser(s, admin),
    createUser(s, admin, 'OBSERVER'),
  ]);
});
afterAll(() => s?.close());

type MemberRole = 'OWNER' | 'MAINTAINER' | 'CONTRIBUTOR' | 'VIEWER';

/** A project owned by `owner` with `contributor` and `viewer` (and `extra`) as members, and a task in it. */
async function newTask(extra: [TestUser, MemberRole][] = []): Promise<{ taskId: string; projectId: string }> {
  const projectId = randomUUID();
  const taskId = randomUUID();
  await s.sql(`INSERT INTO projects (id, name, owner_id, status) VALUES ($1, $2, $3, 'ACTIVE')`, [
    projectId,
    `p-${projectId.slice(0, 8)}`,
    owner.id,
  ]);
  const members: [TestUser, MemberRole][] = [
    [owner, 'OWNER'],
    [contributor, 'CONTRIBUTOR'],
    [viewer, 'VIEWER'],
    [observer, 'VIEWER'],
    ...extra,
  ];
  for (const [u, role] of members) {
    await s.sql(`INSERT INTO project_members (id, project_id, user_id, role) VALUES ($1, $2, $3, $4)`, [
      randomUUID(),
      projectId,
      u.id,
      role,
    ]);
  }
  await s.sql(`INSERT INTO tasks (id, title, created_by_id, project_id) VALUES ($1, 'a task with files', $2, $3)`, [
    taskId,
    owner.id,
    projectId,
  ]);
  return { taskId, projectId };
}

interface Declared {
  id: string;
  uploadUrl: string;
}

async function declare(
  u: TestUser,
  taskId: string,
  input: { originalName?: string; mimeType?: string; sizeBytes: number; expiresAt?: string },
): Promise<Declared> {
  const r = await ok(
    s.url,
    CreateFileAttachmentDocument,
    {
      input: {
        taskId,
        originalName: input.originalName ?? 'notes.txt',
        mimeType: input.mimeType ?? 'text/plain',
        sizeBytes: input.sizeBytes,
        expiresAt: input.expiresAt,
      },
    },
    u.token,
  );
  return { id: r.createFileAttachment.attachment.id, uploadUrl: r.createFileAttachment.uploadUrl };
}

function put(
  url: string,
  token: string | null,
  body: Buffer | ReadableStream<Uint8Array>,
  contentType: string | null = 'text/plain',
) {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (contentType) headers['content-type'] = contentType;
  return fetch(url, { method: 'PUT', headers, body, duplex: 'half' } as RequestInit);
}

const get = (url: string, token: string | null) =>
  fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });

/** A request body sent in chunks without Content-Length (chunked transfer encoding). */
function chunked(total: number, chunk = 64 * 1024): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= total) return controller.close();
      const n = Math.min(chunk, total - sent);
      sent += n;
      controller.enqueue(new Uint8Array(randomBytes(n)));
    },
  });
}

/** What is in the attachments directory (finished files and temporary ones alike). */
const files = () => (existsSync(dir) ? readdirSync(dir) : []);
const row = async (id: string) =>
  (
    await s.sql<{ uploaded_at: Date | null; sha256: string | null; stored_name: string }>(
      'SELECT uploaded_at, sha256, stored_name FROM file_attachments WHERE id = $1',
      [id],
    )
  )[0];
const errorCode = async (res: Response) =>
  ((await res.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code;

describe('file attachments', () => {
  it('uploads a file to the upload URL and downloads it byte for byte, with its sha256', async () => {
    const { taskId } = await newTask();
    const bytes = randomBytes(300_000);
    const created = await ok(
      s.url,
      CreateFileAttachmentDocument,
      {
        input: { taskId, originalName: '../../etc/\u202Ereport.txt', mimeType: 'Text/Plain', sizeBytes: bytes.length },
      },
      contributor.token,
    );
    const a = created.createFileAttachment.attachment;
    expect(created.createFileAttachment.uploadUrl).toBe(`${s.app.url}/files/${a.id}`);
    expect(a).toMatchObject({
      originalName: 'report.txt',
      mimeType: 'text/plain',
      sizeBytes: bytes.length,
      sha256: null,
      uploadedAt: null,
      downloadUrl: null,
      isEncrypted: false,
    });

    const res = await put(
      created.createFileAttachment.uploadUrl,
      contributor.token,
      bytes,
      'text/plain; charset=utf-8',
    );
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: a.id, sha256: sha256(bytes), sizeBytes: bytes.length });

    // Stored under the attachment's id, nothing else left behind, recorded and audited.
    expect(files()).toEqual([a.id]);
    expect(readFileSync(join(dir, a.id)).equals(bytes)).toBe(true);
    expect(await row(a.id)).toMatchObject({ sha256: sha256(bytes), stored_name: a.id });
    const audit = await s.sql<{ action: string; actor_id: string }>(
      `SELECT action, actor_id FROM audit_events WHERE entity_id = $1 ORDER BY created_at, id`,
      [a.id],
    );
    expect(audit).toEqual([
      { action: 'fileAttachment.create', actor_id: contributor.id },
      { action: 'fileAttachment.upload', actor_id: contributor.id },
    ]);

    const q = await ok(s.url, FileAttachmentDocument, { id: a.id }, viewer.token);
    expect(q.fileAttachment).toMatchObject({
      sha256: sha256(bytes),
      downloadUrl: `${s.app.url}/files/${a.id}`,
      uploadedBy: { id: contributor.id },
      task: { id: taskId },
    });
    expect(q.fileAttachment!.uploadedAt).not.toBeNull();

    const down = await get(q.fileAttachment!.downloadUrl!, viewer.token);
    expect(down.status).toBe(200);
    expect(down.headers.get('content-type')).toBe('text/plain');
    expect(down.headers.get('content-length')).toBe(String(bytes.length));
    expect(down.headers.get('content-disposition')).toBe(
      `attachment; filename="report.txt"; filename*=UTF-8''report.txt`,
    );
    expect(down.headers.get('x-content-type-options')).toBe('nosniff');
    const got = Buffer.from(await down.arrayBuffer());
    expect(sha256(got)).toBe(sha256(bytes));
    expect(got.equals(bytes)).toBe(true);
  });

  it('gives a safe download name to a name with quotes and non-ASCII characters', async () => {
    const { taskId } = await newTask();
    const { id, uploadUrl } = await declare(owner, taskId, {
      originalName: 'C:\\Users\\me\\Ré"sumé".pdf',
      mimeType: 'application/pdf',
      sizeBytes: 3,
    });
    expect((await put(uploadUrl, owner.token, Buffer.from('pdf'), 'application/pdf')).status).toBe(200);
    const down = await get(uploadUrl, owner.token);
    expect(down.headers.get('content-disposition')).toBe(
      `attachment; filename="R__sum__.pdf"; filename*=UTF-8''R%C3%A9_sum%C3%A9_.pdf`,
    );
    expect((await ok(s.url, FileAttachmentDocument, { id }, owner.token)).fileAttachment!.originalName).toBe(
      'Ré_sumé_.pdf',
    );
  });

  it('refuses a body longer than declared with 413 and keeps nothing, by Content-Length or mid-stream', async () => {
    const { taskId } = await newTask();
    const before = files();
    const { id, uploadUrl } = await declare(owner, taskId, { sizeBytes: 1000 });

    const declaredLonger = await put(uploadUrl, owner.token, randomBytes(1001));
    expect(declaredLonger.status).toBe(413);

    // Without Content-Length the server counts: one byte past the declared size stops it.
    const streamedLonger = await put(uploadUrl, owner.token, chunked(256 * 1024, 700)).catch((err: Error) => err);
    if (streamedLonger instanceof Response) expect(streamedLonger.status).toBe(413);
    else expect(String(streamedLonger.cause ?? streamedLonger)).toMatch(/other side closed|ECONNRESET|EPIPE|socket/i);

    expect(files()).toEqual(before);
    expect(await row(id)).toMatchObject({ uploaded_at: null, sha256: null });
    // The declaration still stands: the right bytes are accepted afterwards.
    const right = randomBytes(1000);
    const res = await put(uploadUrl, owner.token, right);
    expect(res.status).toBe(200);
    expect(readFileSync(join(dir, id)).equals(right)).toBe(true);
  });

  it('refuses a body shorter than declared with 400 and keeps nothing', async () => {
    const { taskId } = await newTask();
    const before = files();
    const { id, uploadUrl } = await declare(owner, taskId, { sizeBytes: 100_000 });
    const short = await put(uploadUrl, owner.token, randomBytes(99_999));
    expect(short.status).toBe(400);
    expect(await errorCode(short)).toBe('BAD_USER_INPUT');
    const streamedShort = await put(uploadUrl, owner.token, chunked(50_000, 10_000));
    expect(streamedShort.status).toBe(400);
    expect(files()).toEqual(before);
    expect(await row(id)).toMatchObject({ uploaded_at: null, sha256: null });
  });

  it('refuses a Content-Type other than the declared one with 415', async () => {
    const { taskId } = await newTask();
    const { id, uploadUrl } = await declare(owner, taskId, { mimeType: 'image/png', sizeBytes: 4 });
    for (const type of ['text/plain', 'image/jpeg', 'application/octet-stream', null]) {
      const res = await put(uploadUrl, owner.token, Buffer.from('abcd'), type);
      expect(res.status, String(type)).toBe(415);
    }
    expect(await row(id)).toMatchObject({ uploaded_at: null });
    expect((await put(uploadUrl, owner.token, Buffer.from('abcd'), 'IMAGE/PNG')).status).toBe(200);
  });

  it('refuses an unknown mime type, a size out of bounds, a past expiry or a name with nothing left at creation', async () => {
    const { taskId } = await newTask();
    const base = { taskId, originalName: 'a.txt', mimeType: 'text/plain', sizeBytes: 10 };
    for (const input of [
      { ...base, mimeType: 'application/x-msdownload' },
      { ...base, mimeType: 'text/html' },
      { ...base, sizeBytes: 0 },
      { ...base, sizeBytes: 4 * 1024 * 1024 + 1 },
      { ...base, sizeBytes: 1.5 },
      { ...base, originalName: '../..' },
      { ...base, originalName: 'dir/' },
      { ...base, expiresAt: new Date(Date.now() - 1000).toISOString() },
    ]) {
      const r = await gql(s.url, CreateFileAttachmentDocument, { input }, owner.token);
      expect(codes(r), JSON.stringify(input)).toEqual(['BAD_USER_INPUT']);
    }
    expect(await s.sql('SELECT 1 FROM file_attachments WHERE task_id = $1', [taskId])).toEqual([]);
  });

  it('accepts the bytes only once: a second PUT is refused with 409 and the first file stays', async () => {
    const { taskId } = await newTask();
    const first = randomBytes(64);
    const { id, uploadUrl } = await declare(owner, taskId, { sizeBytes: 64 });
    expect((await put(uploadUrl, owner.token, first)).status).toBe(200);
    const again = await put(uploadUrl, owner.token, randomBytes(64));
    expect(again.status).toBe(409);
    expect(await errorCode(again)).toBe('CONFLICT');
    expect(readFileSync(join(dir, id)).equals(first)).toBe(true);
    expect((await row(id))!.sha256).toBe(sha256(first));
  });

  it('lets exactly one of two racing uploads win', async () => {
    const { taskId } = await newTask();
    const { id, uploadUrl } = await declare(owner, taskId, { sizeBytes: 200_000 });
    const bodies = [randomBytes(200_000), randomBytes(200_000)];
    const results = await Promise.all(bodies.map((b) => put(uploadUrl, owner.token, b)));
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
    const winner = bodies[results.findIndex((r) => r.status === 200)]!;
    expect(readFileSync(join(dir, id)).equals(winner)).toBe(true);
    expect((await row(id))!.sha256).toBe(sha256(winner));
    expect(files().filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it("hides a task's attachments from a non-member: it cannot declare, upload or download (NOT_FOUND / 404)", async () => {
    const { taskId } = await newTask();
    const r = await gql(
      s.url,
      CreateFileAttachmentDocument,
      { input: { taskId, originalName: 'x.txt', mimeType: 'text/plain', sizeBytes: 1 } },
      stranger.token,
    );
    expect(codes(r)).toEqual(['NOT_FOUND']);

    const pending = await declare(owner, taskId, { sizeBytes: 1 });
    const refused = await put(pending.uploadUrl, stranger.token, Buffer.from('x'));
    expect(refused.status).toBe(404);
    expect(await errorCode(refused)).toBe('NOT_FOUND');

    expect((await put(pending.uploadUrl, owner.token, Buffer.from('x'))).status).toBe(200);
    expect((await get(pending.uploadUrl, stranger.token)).status).toBe(404);
    expect((await ok(s.url, FileAttachmentDocument, { id: pending.id }, stranger.token)).fileAttachment).toBeNull();
    expect((await get(`${s.app.url}/files/${randomUUID()}`, owner.token)).status).toBe(404);
    expect((await get(`${s.app.url}/files/not-an-id`, owner.token)).status).toBe(404);
  });

  it('lets a VIEWER download but not declare, and only the declarer or an admin upload', async () => {
    const { taskId } = await newTask();
    const r = await gql(
      s.url,
      CreateFileAttachmentDocument,
      { input: { taskId, originalName: 'v.txt', mimeType: 'text/plain', sizeBytes: 1 } },
      viewer.token,
    );
    expect(codes(r)).toEqual(['FORBIDDEN']);
    const o = await gql(
      s.url,
      CreateFileAttachmentDocument,
      { input: { taskId, originalName: 'o.txt', mimeType: 'text/plain', sizeBytes: 1 } },
      observer.token,
    );
    expect(codes(o)).toEqual(['FORBIDDEN']);

    const mine = await declare(contributor, taskId, { sizeBytes: 2 });
    // Not yet uploaded: nothing to download, even for the declarer.
    expect((await get(mine.uploadUrl, contributor.token)).status).toBe(404);
    // Another member (even the project's owner) does not upload someone else's declaration.
    expect((await put(mine.uploadUrl, owner.token, Buffer.from('ab'))).status).toBe(403);
    expect((await put(mine.uploadUrl, viewer.token, Buffer.from('ab'))).status).toBe(403);
    expect((await put(mine.uploadUrl, admin.token, Buffer.from('ab'))).status).toBe(200);

    const down = await get(mine.uploadUrl, viewer.token);
    expect(down.status).toBe(200);
    expect(await down.text()).toBe('ab');
    expect((await get(mine.uploadUrl, observer.token)).status).toBe(200);
  });

  it('requires a bearer token for the upload and the download (401)', async () => {
    const { taskId } = await newTask();
    const { uploadUrl } = await declare(owner, taskId, { sizeBytes: 1 });
    const anonymous = await put(uploadUrl, null, Buffer.from('x'));
    expect(anonymous.status).toBe(401);
    expect(await errorCode(anonymous)).toBe('UNAUTHENTICATED');
    expect((await put(uploadUrl, 'not-a-token', Buffer.from('x'))).status).toBe(401);
    expect((await put(uploadUrl, owner.token, Buffer.from('x'))).status).toBe(200);
    expect((await get(uploadUrl, null)).status).toBe(401);
  });

  it('deletes an attachment (row and file) for its declarer or a MAINTAINER, not for a VIEWER', async () => {
    const maintainer = await createUser(s, admin);
    const { taskId } = await newTask([[maintainer, 'MAINTAINER']]);
    const a = await declare(contributor, taskId, { sizeBytes: 3 });
    const b = await declare(owner, taskId, { sizeBytes: 3 });
    for (const x of [a, b])
      expect((await put(x.uploadUrl, x === a ? contributor.token : owner.token, Buffer.from('abc'))).status).toBe(200);

    expect(codes(await gql(s.url, DeleteFileAttachmentDocument, { id: a.id }, viewer.token))).toEqual(['FORBIDDEN']);
    expect(codes(await gql(s.url, DeleteFileAttachmentDocument, { id: a.id }, stranger.token))).toEqual(['NOT_FOUND']);
    expect(codes(await gql(s.url, DeleteFileAttachmentDocument, { id: b.id }, contributor.token))).toEqual([
      'FORBIDDEN',
    ]);

    expect((await ok(s.url, DeleteFileAttachmentDocument, { id: a.id }, contributor.token)).deleteFileAttachment).toBe(
      true,
    );
    expect((await ok(s.url, DeleteFileAttachmentDocument, { id: b.id }, maintainer.token)).deleteFileAttachment).toBe(
      true,
    );
    for (const x of [a, b]) {
      expect(await row(x.id)).toBeUndefined();
      expect(existsSync(join(dir, x.id))).toBe(false);
      expect((await get(x.uploadUrl, owner.token)).status).toBe(404);
    }
    const audit = await s.sql<{ actor_id: string }>(
      `SELECT actor_id FROM audit_events WHERE action = 'fileAttachment.delete' AND entity_id = ANY($1) ORDER BY created_at`,
      [[a.id, b.id]],
    );
    expect(audit.map((e) => e.actor_id)).toEqual([contributor.id, maintainer.id]);
  });

  it('removes expired attachments and uploads never completed within 24 hours, row and file, by the job', async () => {
    const { taskId } = await newTask();
    const expiring = await declare(owner, taskId, {
      sizeBytes: 5,
      expiresAt: new Date(Date.now() + 3600_000).toISOString(),
    });
    const kept = await declare(owner, taskId, { sizeBytes: 5 });
    const abandoned = await declare(owner, taskId, { sizeBytes: 5 });
    const recent = await declare(owner, taskId, { sizeBytes: 5 });
    for (const x of [expiring, kept])
      expect((await put(x.uploadUrl, owner.token, Buffer.from('hello'))).status).toBe(200);

    await s.sql(`UPDATE file_attachments SET expires_at = now() - interval '1 second' WHERE id = $1`, [expiring.id]);
    await s.sql(`UPDATE file_attachments SET created_at = now() - interval '25 hours' WHERE id = $1`, [abandoned.id]);
    // Expired is gone for readers at once, before the job runs.
    expect((await get(expiring.uploadUrl, owner.token)).status).toBe(404);
    expect(existsSync(join(dir, expiring.id))).toBe(true);

    const run = await s.app.runtime.scheduler.runNow('work.removeExpiredAttachments');
    expect(run.ran).toBe(true);
    expect(run.result).toMatchObject({ expired: 1, abandoned: 1 });

    expect(await row(expiring.id)).toBeUndefined();
    expect(existsSync(join(dir, expiring.id))).toBe(false);
    expect(await row(abandoned.id)).toBeUndefined();
    expect(await row(kept.id)).toBeDefined();
    expect(existsSync(join(dir, kept.id))).toBe(true);
    expect(await row(recent.id)).toBeDefined();
    const audit = await s.sql<{ entity_id: string; actor_label: string; reason: string }>(
      `SELECT entity_id, actor_label, after->>'reason' AS reason FROM audit_events WHERE action = 'fileAttachment.remove' AND entity_id = ANY($1) ORDER BY entity_id`,
      [[expiring.id, abandoned.id]],
    );
    expect(audit).toEqual(
      [
        { entity_id: expiring.id, actor_label: 'job:work.removeExpiredAttachments', reason: 'EXPIRED' },
        { entity_id: abandoned.id, actor_label: 'job:work.removeExpiredAttachments', reason: 'ABANDONED' },
      ].sort((x, y) => x.entity_id.localeCompare(y.entity_id)),
    );
  });

  it('lists Task.attachments for any number of tasks in the same number of SQL statements', async () => {
    const tasks = await Promise.all([newTask(), newTask(), newTask()]);
    const firsts: string[] = [];
    for (const { taskId } of tasks) {
      const a = await declare(owner, taskId, { originalName: 'one.txt', sizeBytes: 1 });
      await declare(owner, taskId, { originalName: 'two.txt', sizeBytes: 1 });
      expect((await put(a.uploadUrl, owner.token, Buffer.from('1'))).status).toBe(200);
      firsts.push(a.id);
    }
    const single = await ok(s.url, AttachmentsOfTaskOfDocument, { id: firsts[0]! }, viewer.token);
    expect(single.fileAttachment!.task.attachments.map((x) => [x.originalName, x.downloadUrl !== null])).toEqual([
      ['one.txt', true],
      ['two.txt', false],
    ]);

    const pool = s.app.runtime.db.pool;
    const original = pool.query.bind(pool);
    let statements = 0;
    (pool as { query: unknown }).query = (...args: unknown[]) => {
      statements++;
      return (original as (...a: unknown[]) => unknown)(...args);
    };
    const aliased = (n: number) =>
      `query { ${firsts
        .slice(0, n)
        .map(
          (id, i) =>
            `a${i}: fileAttachment(id: "${id}") { id task { id attachments { id originalName downloadUrl } } }`,
        )
        .join(' ')} }`;
    try {
      const counts: number[] = [];
      for (const n of [1, 3]) {
        statements = 0;
        const r = await ok<Record<string, { task: { attachments: unknown[] } }>>(s.url, aliased(n), {}, viewer.token);
        expect(Object.values(r).map((x) => x.task.attachments.length)).toEqual(Array(n).fill(2));
        counts.push(statements);
      }
      expect(counts[1]).toBe(counts[0]);
    } finally {
      (pool as { query: unknown }).query = original;
    }
  });
});
