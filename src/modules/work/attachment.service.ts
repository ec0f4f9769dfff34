import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { LockMode } from '@mikro-orm/core';
import sql from 'sql-template-tag';

import type { Config } from '../../config.js';
import type { SqlClient } from '../../db/sql.js';
import type { JobDefinition } from '../../jobs/scheduler.js';
import {
  AppError,
  BadInputError,
  ConflictError,
  ForbiddenError,
  isUuid,
  NotFoundError,
  requireUuid,
} from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { inTransaction, systemMeta, type Scope, type Viewer } from '../../shared/scope.js';
import { isHumanAdmin } from '../../shared/viewer.js';
import type { AuditService } from '../audit/index.js';
import { Role } from '../identity/user.entity.js';
import { atLeast, type ProjectService } from '../projects/index.js';
import { ProjectRole } from '../projects/project-member.entity.js';
import { FileAttachment } from './file-attachment.entity.js';
import type { TaskPolicy } from './task.policy.js';

export interface AttachmentDeps {
  config: Config;
  db: SqlClient;
  audit: AuditService;
  logger: Logger;
  projects: ProjectService;
  taskPolicy: TaskPolicy;
}

export interface CreateAttachmentInput {
  taskId: string;
  originalName: string;
  mimeType: string;
  sizeBytes: number;
  expiresAt?: Date | null;
}

/** What a finished upload answers (the PUT's JSON body). */
export interface UploadResult {
  id: string;
  sha256: string;
  sizeBytes: number;
}

/** An upload's request, as far as the service needs to know it. */
export interface UploadRequest {
  /** The Content-Type header, verbatim (parameters such as `; charset=utf-8` are ignored). */
  contentType: string | undefined;
  /** The Content-Length header, when the client sent one. */
  contentLength: string | undefined;
  body: Readable;
}

/** A file ready to be streamed to its reader. The caller closes `file` (a read stream made from it does so by itself). */
export interface Download {
  file: FileHandle;
  size: number;
  mimeType: string;
  originalName: string;
  sha256: string;
}

/**
 * An upload refused for what HTTP has its own status for: 413 (longer than declared)
 * and 415 (another Content-Type than declared). Its code is BAD_USER_INPUT, so that
 * through GraphQL it would read like any other bad input; the upload route answers
 * with `httpStatus` (see httpStatusOfError in src/server/http-status.ts).
 */
export class UploadRefusedError extends AppError {
  constructor(
    readonly httpStatus: 413 | 415,
    message: string,
  ) {
    super('BAD_USER_INPUT', message);
  }
  static tooLarge(declared: number) {
    return new UploadRefusedError(413, `The upload is longer than the declared ${declared} bytes`);
  }
  static wrongType(declared: string, given: string | undefined) {
    return new UploadRefusedError(
      415,
      `The upload's Content-Type must be ${declared} as declared${given ? ` (got ${given})` : ''}`,
    );
  }
}

/** The client closed the connection before the whole body arrived: nothing to answer, nothing kept. */
export class UploadAbortedError extends Error {
  constructor() {
    super('The client went away during the upload');
  }
}

/** Uploads that never completed are removed after this long. */
export const ABANDONED_UPLOAD_HOURS = 24;
/** Removal job batch: rows deleted (and audited) per transaction. */
const REMOVAL_BATCH = 500;
/** Temporary upload files are named `.upload-<attachment id>-<random>`, beside the finished ones. */
const TEMP_PREFIX = '.upload-';

/** The media type of a Content-Type value, without parameters, lower-cased: `Text/Plain; charset=utf-8` → `text/plain`. */
export const essence = (contentType: string | undefined): string =>
  (contentType ?? '').split(';')[0]!.trim().toLowerCase();

/**
 * A client's file name made safe to keep and to hand back in Content-Disposition: the
 * last path segment only (both `/` and `\` separate), without control characters,
 * bidirectional overrides (`invoice\u202Egpj.exe`), characters Windows forbids, or
 * leading and trailing dots and spaces. Empty when nothing is left. The name is only
 * ever shown: files are stored under the attachment's id.
 */
export function sanitiseFileName(raw: string): string {
  const last = raw.normalize('NFC').split(/[/\\]/).pop() ?? '';
  return last
    .replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, '')
    .replace(/[<>:"|?*]/g, '_')
    .replace(/^[\s.]+|[\s.]+$/g, '')
    .slice(0, 255);
}

/** `attachment` with an ASCII fallback name and the exact one in RFC 5987 form. */
export function contentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\%]/g, '_') || 'download';
  const exact = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${exact}`;
}

const snapshot = (a: {
  id: string;
  taskId: string;
  originalName: string;
  mimeType: string;
  sizeBytes: number | string;
  sha256?: string | null;
  expiresAt?: Date | null;
}) => ({
  taskId: a.taskId,
  originalName: a.originalName,
  mimeType: a.mimeType,
  sizeBytes: Number(a.sizeBytes),
  sha256: a.sha256 ?? null,
  expiresAt: a.expiresAt ?? null,
});

interface AttachmentRow {
  id: string;
  task_id: string;
  uploaded_by_id: string | null;
  stored_name: string;
  original_name: string;
  mime_type: string;
  size_bytes: string;
  sha256: string | null;
  uploaded_at: Date | null;
  expires_at: Date | null;
}

/**
 * File attachments of tasks. Access follows the task (TaskPolicy): CONTRIBUTOR+
 * declares an attachment, its declarer (or an admin) uploads the bytes once, VIEWER+
 * downloads them, the declarer or MAINTAINER+ deletes. An attachment that is not visible,
 * not uploaded yet or past its expiry does not exist for readers (NOT_FOUND).
 *
 * Files live flat in ATTACHMENTS_DIR under the attachment's id (`storedName`; the stored
 * `storagePath` is that name relative to ATTACHMENTS_DIR, so the directory can move).
 * An upload streams into a temporary file in the same directory, hashing as it goes,
 * and becomes the final file by an atomic rename inside the transaction that records it.
 *
 * The requirements have an `is_encrypted` flag but no scheme; Steward stores files as given
 * (encrypt the volume), so the flag stays false.
 */
export class AttachmentService {
  constructor(private readonly deps: AttachmentDeps) {}

  get dir(): string {
    return this.deps.config.ATTACHMENTS_DIR;
  }

  /** Where the bytes of an attachment go: `${PUBLIC_URL}/files/<id>`. */
  fileUrl(id: string): string {
    return `${this.deps.config.PUBLIC_URL.replace(/\/+$/, '')}/files/${id}`;
  }

  /** The download URL once the bytes arrived, else null. */
  downloadUrl(a: { id: string; uploadedAt?: Date | string | null }): string | null {
    return a.uploadedAt ? this.fileUrl(a.id) : null;
  }

  private pathOf(storedName: string): string {
    // Stored names are attachment ids; anything else would be a bug or tampering, never a path.
    if (!isUuid(storedName)) throw new Error(`not a stored attachment name: ${storedName}`);
    return join(this.dir, storedName);
  }

  /** A task's work may change: CONTRIBUTOR+ (or `min`), and its project, if any, is ACTIVE. */
  private async requireWritableTask(viewer: Viewer, taskId: string, min: ProjectRole) {
    if (viewer.role === Role.OBSERVER) throw new ForbiddenError('Observers cannot change anything');
    const access = await this.deps.taskPolicy.require(viewer, taskId, min);
    if (access.projectId) await this.deps.projects.requireWritable(viewer, access.projectId, min);
    return access;
  }

  /** Declares an attachment; the bytes follow by PUT to `uploadUrl`. */
  async create(
    scope: Scope,
    viewer: Viewer,
    input: CreateAttachmentInput,
  ): Promise<{ attachment: FileAttachment; uploadUrl: string }> {
    const taskId = requireUuid(input.taskId, 'taskId');
    const { config } = this.deps;
    const mimeType = essence(input.mimeType);
    if (!config.ATTACHMENT_MIME_TYPES.includes(mimeType)) {
      throw new BadInputError(
        `mimeType: ${input.mimeType} is not accepted (accepted: ${config.ATTACHMENT_MIME_TYPES.join(', ')})`,
        { field: 'mimeType', accepted: config.ATTACHMENT_MIME_TYPES },
      );
    }
    if (
      !Number.isSafeInteger(input.sizeBytes) ||
      input.sizeBytes < 1 ||
      input.sizeBytes > config.ATTACHMENT_MAX_BYTES
    ) {
      throw new BadInputError(`sizeBytes: must be a whole number from 1 to ${config.ATTACHMENT_MAX_BYTES}`, {
        field: 'sizeBytes',
        max: config.ATTACHMENT_MAX_BYTES,
      });
    }
    const originalName = sanitiseFileName(input.originalName);
    if (!originalName) throw BadInputError.field('originalName', 'must contain a file name');
    if (input.expiresAt && input.expiresAt.getTime() <= Date.now())
      throw BadInputError.field('expiresAt', 'must be in the future');

    await this.requireWritableTask(viewer, taskId, ProjectRole.CONTRIBUTOR);
    const attachment = await inTransaction(scope, async (tx) => {
      const a = tx.em.create(FileAttachment, {
        task: taskId,
        uploadedBy: viewer.userId,
        storedName: '',
        originalName,
        mimeType,
        sizeBytes: input.sizeBytes,
        storagePath: '',
        expiresAt: input.expiresAt ?? null,
      });
      a.storedName = a.storagePath = a.id;
      this.deps.audit.record(tx, {
        action: 'fileAttachment.create',
        entityType: 'FileAttachment',
        entityId: a.id,
        after: snapshot({ ...a, taskId }),
      });
      return a;
    });
    return { attachment, uploadUrl: this.fileUrl(attachment.id) };
  }

  private row(id: string): Promise<AttachmentRow | undefined> {
    return this.deps.db.one<AttachmentRow>(sql`
      SELECT id, task_id, uploaded_by_id, stored_name, original_name, mime_type, size_bytes, sha256, uploaded_at, expires_at
        FROM file_attachments WHERE id = ${id}::uuid`);
  }

  /**
   * Receives the bytes of an attachment. Checked before a byte is read: the caller may
   * see the task (else NOT_FOUND) and is the declarer or an admin and may still change
   * the task's work (else FORBIDDEN); the bytes did not arrive yet (else CONFLICT); the
   * Content-Type is the declared one (else 415); a Content-Length, if sent, is the
   * declared size. The body then streams to a temporary file while its sha256 is
   * computed; one byte past the declared size stops it (413) and a shorter body is
   * refused (BAD_USER_INPUT); either way nothing is kept. The file is synced, renamed to
   * the attachment's id and recorded (sha256, uploadedAt, audit) in one transaction that
   * holds the row, so of two racing uploads exactly one wins and the other gets CONFLICT.
   */
  async upload(scope: Scope, viewer: Viewer, rawId: string, req: UploadRequest): Promise<UploadResult> {
    if (!isUuid(rawId)) throw new NotFoundError('FileAttachment', rawId);
    const id = rawId.toLowerCase();
    const row = await this.row(id);
    const access =
      row && (!row.expires_at || row.expires_at > new Date())
        ? await this.deps.taskPolicy.access(viewer, row.task_id)
        : null;
    if (!row || !access) throw new NotFoundError('FileAttachment', id);
    if (!isHumanAdmin(viewer) && (viewer.serviceActor || row.uploaded_by_id !== viewer.userId)) {
      throw new ForbiddenError('Only the user who created the attachment, or an admin, uploads its file');
    }
    if (!isHumanAdmin(viewer) && !atLeast(access.role, ProjectRole.CONTRIBUTOR))
      throw new ForbiddenError("You may no longer change this task's work");
    if (access.projectId)
      await this.deps.projects.requireWritable(
        viewer,
        access.projectId,
        isHumanAdmin(viewer) ? ProjectRole.VIEWER : ProjectRole.CONTRIBUTOR,
      );
    if (row.uploaded_at)
      throw new ConflictError(
        'The file of this attachment was already uploaded; create a new attachment to replace it',
      );
    if (essence(req.contentType) !== row.mime_type) throw UploadRefusedError.wrongType(row.mime_type, req.contentType);
    const declared = Number(row.size_bytes);
    if (req.contentLength !== undefined) {
      const length = Number(req.contentLength);
      if (length > declared) throw UploadRefusedError.tooLarge(declared);
      if (length < declared)
        throw BadInputError.field('body', `the upload is ${length} bytes, ${declared} were declared`);
    }

    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const temp = join(this.dir, `${TEMP_PREFIX}${id}-${randomUUID()}`);
    const final = this.pathOf(row.stored_name);
    let renamed = false;
    try {
      const { size, sha256 } = await this.receive(req.body, temp, declared);
      if (size < declared) throw BadInputError.field('body', `the upload is ${size} bytes, ${declared} were declared`);
      await inTransaction(scope, async (tx) => {
        const a = await tx.em.findOne(FileAttachment, id, { lockMode: LockMode.PESSIMISTIC_WRITE });
        if (!a) throw new NotFoundError('FileAttachment', id); // deleted meanwhile
        if (a.uploadedAt)
          throw new ConflictError(
            'The file of this attachment was already uploaded; create a new attachment to replace it',
          );
        await rename(temp, final);
        renamed = true;
        await syncDir(this.dir);
        a.sha256 = sha256;
        a.uploadedAt = new Date();
        this.deps.audit.record(tx, {
          action: 'fileAttachment.upload',
          entityType: 'FileAttachment',
          entityId: id,
          after: { sha256, sizeBytes: size },
        });
      });
      return { id, sha256, sizeBytes: size };
    } catch (err) {
      await rm(renamed ? final : temp, { force: true }).catch((e) =>
        this.deps.logger.warn({ err: e, module: 'work', attachment: id }, 'could not discard a refused upload'),
      );
      throw err;
    }
  }

  /** Streams `body` into a new file at `path`, hashing; fails with 413 at the first byte past `max`. Synced to disk when it resolves. */
  private async receive(body: Readable, path: string, max: number): Promise<{ size: number; sha256: string }> {
    const hash = createHash('sha256');
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        size += chunk.length;
        if (size > max) return done(UploadRefusedError.tooLarge(max));
        hash.update(chunk);
        done(null, chunk);
      },
    });
    // The request is piped rather than put in the pipeline: a refused upload must leave the
    // request (and its socket) alive so that the refusal can still be answered on it.
    const aborted = () => meter.destroy(new UploadAbortedError());
    const onClose = () => {
      if (!body.readableEnded) aborted();
    };
    body.once('error', aborted);
    body.once('close', onClose);
    try {
      body.pipe(meter);
      // `flush`: the file is fsync'ed before it closes, so what the rename publishes is on disk.
      await pipeline(meter, createWriteStream(path, { flags: 'wx', mode: 0o600, flush: true }));
    } finally {
      body.unpipe(meter);
      body.off('error', aborted);
      body.off('close', onClose);
    }
    return { size, sha256: hash.digest('hex') };
  }

  /**
   * Opens an uploaded attachment for reading: any role on the task's project (VIEWER+),
   * as TaskPolicy decides; NOT_FOUND when not visible, not uploaded yet or expired.
   */
  async openDownload(viewer: Viewer, rawId: string): Promise<Download> {
    if (!isUuid(rawId)) throw new NotFoundError('FileAttachment', rawId);
    const id = rawId.toLowerCase();
    const row = await this.row(id);
    const readable = row?.uploaded_at && (!row.expires_at || row.expires_at > new Date());
    if (!row || !readable || !(await this.deps.taskPolicy.access(viewer, row.task_id)))
      throw new NotFoundError('FileAttachment', id);
    let file: FileHandle;
    try {
      file = await open(this.pathOf(row.stored_name), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      this.deps.logger.error({ module: 'work', attachment: id }, 'the file of an uploaded attachment is missing');
      throw new NotFoundError('FileAttachment', id);
    }
    const { size } = await file.stat();
    return { file, size, mimeType: row.mime_type, originalName: row.original_name, sha256: row.sha256 ?? '' };
  }

  /** The declarer (while it may still change the task's work) or MAINTAINER+ removes an attachment: row, then file. */
  async delete(scope: Scope, viewer: Viewer, rawId: string): Promise<boolean> {
    const id = requireUuid(rawId);
    const row = await this.row(id);
    const access = row ? await this.deps.taskPolicy.access(viewer, row.task_id) : null;
    if (!row || !access) throw new NotFoundError('FileAttachment', id);
    const own = !viewer.serviceActor && row.uploaded_by_id === viewer.userId;
    await this.requireWritableTask(viewer, row.task_id, own ? ProjectRole.CONTRIBUTOR : ProjectRole.MAINTAINER);
    const removed = await inTransaction(scope, async (tx) => {
      // Waits for an upload being recorded, so its file is removed too.
      const a = await tx.em.findOne(FileAttachment, id, { lockMode: LockMode.PESSIMISTIC_WRITE });
      if (!a) throw new NotFoundError('FileAttachment', id);
      tx.em.remove(a);
      this.deps.audit.record(tx, {
        action: 'fileAttachment.delete',
        entityType: 'FileAttachment',
        entityId: id,
        before: snapshot({ ...a, taskId: row.task_id }),
      });
      return a.storedName;
    });
    await this.removeFile(removed);
    return true;
  }

  /**
   * The removal job: attachments past their expiry, and declarations whose upload never
   * completed within ABANDONED_UPLOAD_HOURS, go (rows audited in batches, each batch one
   * transaction, files after its commit); so do temporary files of uploads that died
   * with their process. Rows being uploaded or deleted right now are skipped, not waited for.
   */
  async removeExpired(
    scope: Scope,
    actorLabel: string,
  ): Promise<{ expired: number; abandoned: number; tempFiles: number }> {
    let expired = 0;
    let abandoned = 0;
    for (;;) {
      const rows = await inTransaction(scope, async (tx) => {
        const batch = await tx.em.execute<(AttachmentRow & { reason: 'EXPIRED' | 'ABANDONED' })[]>(
          `DELETE FROM file_attachments WHERE id IN (
             SELECT id FROM file_attachments
              WHERE expires_at <= now() OR (uploaded_at IS NULL AND created_at <= now() - interval '${ABANDONED_UPLOAD_HOURS} hours')
              ORDER BY id LIMIT ${REMOVAL_BATCH} FOR UPDATE SKIP LOCKED)
           RETURNING id, task_id, stored_name, original_name, mime_type, size_bytes, sha256, expires_at,
                     CASE WHEN expires_at <= now() THEN 'EXPIRED' ELSE 'ABANDONED' END AS reason`,
        );
        for (const r of batch) {
          this.deps.audit.record(tx, {
            action: 'fileAttachment.remove',
            entityType: 'FileAttachment',
            entityId: r.id,
            actorId: null,
            actorLabel,
            before: snapshot({
              id: r.id,
              taskId: r.task_id,
              originalName: r.original_name,
              mimeType: r.mime_type,
              sizeBytes: r.size_bytes,
              sha256: r.sha256,
              expiresAt: r.expires_at,
            }),
            after: { reason: r.reason },
          });
        }
        return batch;
      });
      for (const r of rows) {
        if (r.reason === 'EXPIRED') expired++;
        else abandoned++;
        await this.removeFile(r.stored_name);
      }
      if (rows.length < REMOVAL_BATCH) break;
    }
    return { expired, abandoned, tempFiles: await this.sweepTemporaryFiles() };
  }

  private async sweepTemporaryFiles(): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
    const cutoff = Date.now() - ABANDONED_UPLOAD_HOURS * 3600_000;
    let removed = 0;
    for (const name of names) {
      if (!name.startsWith(TEMP_PREFIX)) continue;
      const path = join(this.dir, name);
      const info = await stat(path).catch(() => null);
      if (info && info.mtimeMs < cutoff) {
        await rm(path, { force: true });
        removed++;
      }
    }
    return removed;
  }

  /** After the row is gone: a file that cannot be removed is logged, never resurrects the row. */
  private async removeFile(storedName: string): Promise<void> {
    await rm(this.pathOf(storedName), { force: true }).catch((err) =>
      this.deps.logger.error({ err, module: 'work', storedName }, 'could not remove the file of a removed attachment'),
    );
  }
}

/** Makes a rename in `dir` durable. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export const REMOVE_EXPIRED_ATTACHMENTS_JOB = 'work.removeExpiredAttachments';

/** Every minute: expired attachments and abandoned uploads go (see AttachmentService.removeExpired). */
export const removeExpiredAttachmentsJob = (attachments: AttachmentService): JobDefinition => ({
  name: REMOVE_EXPIRED_ATTACHMENTS_JOB,
  intervalMs: 60_000,
  run: ({ em }) =>
    attachments.removeExpired(
      { em, viewer: null, meta: systemMeta(REMOVE_EXPIRED_ATTACHMENTS_JOB) },
      `job:${REMOVE_EXPIRED_ATTACHMENTS_JOB}`,
    ),
});
