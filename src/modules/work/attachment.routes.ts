import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { EntityManager } from '@mikro-orm/postgresql';

import { httpStatusOfError } from '../../server/http-status.js';
import { sendJson } from '../../server/http.js';
import type { Route, RouteContext } from '../../server/route.js';
import { UnauthenticatedError } from '../../shared/errors.js';
import type { Viewer } from '../../shared/scope.js';
import {
  contentDisposition,
  UploadAbortedError,
  UploadRefusedError,
  type AttachmentService,
} from './attachment.service.js';

/** `/files/<id>`: the id is checked (and unknown ones answered 404) by the service. */
const FILE_PATH = /^\/files\/([^/]+)$/;

/**
 * After a 413, bytes the client still sends are read and dropped (so that it can read the
 * refusal instead of a reset) up to this many; past it the connection is cut.
 */
const DRAIN_LIMIT = 1024 * 1024;

async function viewerOf(ctx: RouteContext): Promise<Viewer> {
  const viewer = await ctx.authenticate();
  if (!viewer) throw new UnauthenticatedError();
  return viewer;
}

/** A refused upload: the refusal, then the rest of the body is discarded (bounded) and the connection closed. */
function refuse(req: IncomingMessage, res: ServerResponse, err: UploadRefusedError) {
  sendJson(
    res,
    httpStatusOfError(err),
    { errors: [{ message: err.message, extensions: { code: err.code } }] },
    { connection: 'close' },
  );
  let drained = 0;
  req.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > DRAIN_LIMIT) req.socket.destroy();
  });
  req.resume();
}

/**
 * The attachment bytes, beside /graphql, authenticated by the same `Authorization: Bearer`
 * access tokens. Errors are the usual JSON `{ errors: [{ message, extensions: { code } }] }`
 * with the matching HTTP status (401, 403, 404, 409, 400, and 413/415 from here).
 *
 * - `PUT /files/:id`: the file of a declared attachment (see AttachmentService.upload);
 *   200 `{ id, sha256, sizeBytes }`.
 * - `GET /files/:id`: the file, as an attachment download, never rendered inline.
 */
export function attachmentRoutes(attachments: AttachmentService): Route[] {
  return [
    {
      method: 'PUT',
      path: FILE_PATH,
      async handler(req, res, ctx) {
        const viewer = await viewerOf(ctx);
        const scope = { em: ctx.runtime.orm.em.fork() as EntityManager, viewer, meta: ctx.meta };
        try {
          const result = await attachments.upload(scope, viewer, ctx.params[1]!, {
            contentType: req.headers['content-type'],
            contentLength: req.headers['content-length'],
            body: req,
          });
          sendJson(res, 200, result);
        } catch (err) {
          if (err instanceof UploadRefusedError) return refuse(req, res, err);
          if (err instanceof UploadAbortedError) return void res.destroy();
          throw err;
        }
      },
    },
    {
      method: 'GET',
      path: FILE_PATH,
      async handler(_req, res, ctx) {
        const viewer = await viewerOf(ctx);
        const download = await attachments.openDownload(viewer, ctx.params[1]!);
        let streaming = false;
        try {
          res.writeHead(200, {
            'content-type': download.mimeType,
            'content-length': download.size,
            'content-disposition': contentDisposition(download.originalName),
            'x-content-type-options': 'nosniff',
            // Even if a browser were to render it: no scripts, no same-origin powers.
            'content-security-policy': "default-src 'none'; sandbox",
            'cache-control': 'private, no-store',
            etag: `"${download.sha256}"`,
          });
          const stream = download.file.createReadStream(); // closes the file when done or destroyed
          streaming = true;
          await pipeline(stream, res);
        } catch (err) {
          // A reader that goes away mid-download is not the server's failure.
          if ((err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') throw err;
        } finally {
          if (!streaming) await download.file.close();
        }
      },
    },
  ];
}
