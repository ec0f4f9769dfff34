import type { IncomingMessage, ServerResponse } from 'node:http';

import type { RequestMeta, Viewer } from '../shared/scope.js';
import type { Runtime } from './context.js';

export interface RouteContext {
  params: RegExpExecArray;
  runtime: Runtime;
  meta: RequestMeta;
  /** The caller from `Authorization: Bearer …`; null without one; throws UNAUTHENTICATED for bad ones. */
  authenticate(): Promise<Viewer | null>;
}

/** A plain HTTP endpoint beside /graphql (uploads, downloads, metrics, the dashboard). */
export interface Route {
  method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  path: RegExp;
  handler(req: IncomingMessage, res: ServerResponse, ctx: RouteContext): void | Promise<void>;
}
