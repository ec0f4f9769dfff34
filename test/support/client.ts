import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type DocumentNode } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

export interface GqlError {
  message: string;
  path?: (string | number)[];
  extensions?: { code?: string; [k: string]: unknown };
}

export interface GqlResult<T> {
  status: number;
  data?: T | null;
  errors?: GqlError[];
  headers: Headers;
}

type Doc<T, V> = TypedDocumentNode<T, V> | DocumentNode | string;
const text = (doc: Doc<unknown, unknown>) => (typeof doc === 'string' ? doc : print(doc));

/** One GraphQL request over real HTTP. */
export async function gql<T = any, V = Record<string, unknown>>(
  url: string,
  doc: Doc<T, V>,
  variables?: V,
  token?: string,
  headers: Record<string, string> = {},
): Promise<GqlResult<T>> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    body: JSON.stringify({ query: text(doc), variables }),
  });
  const body = (await res.json()) as { data?: T; errors?: GqlError[] };
  return { status: res.status, data: body.data, errors: body.errors, headers: res.headers };
}

/** Like gql, but fails the test on any error and returns the data. */
export async function ok<T = any, V = Record<string, unknown>>(
  url: string,
  doc: Doc<T, V>,
  variables?: V,
  token?: string,
): Promise<T> {
  const r = await gql(url, doc, variables, token);
  if (r.errors?.length || !r.data) throw new Error(`GraphQL errors: ${JSON.stringify(r.errors ?? r)}`);
  return r.data;
}

/** The error codes of a result, for `expect(codes(r)).toEqual(['FORBIDDEN'])`. */
export const codes = (r: { errors?: GqlError[] }) => (r.errors ?? []).map((e) => e.extensions?.code);

/** A graphql-ws client over a real WebSocket; closes with the test via `dispose`. */
export function wsClient(
  wsUrl: string,
  token?: string | null,
  extra: Partial<Parameters<typeof createClient>[0]> = {},
): Client {
  return createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
    lazy: true,
    ...extra,
  });
}

export interface Subscription<T> {
  /** The next event (waits up to `ms`). */
  next(ms?: number): Promise<T>;
  /** Resolves with the error or close that ended the subscription. */
  ended: Promise<unknown>;
  /** Events received so far. */
  received: T[];
  /** Events received but not yet taken by `next()`. To prove an event did NOT arrive, see test/support/sentinel.ts. */
  pending(): T[];
  dispose(): void;
}

/** Subscribes and buffers events; use deferred waits instead of sleeps. */
export function subscribe<T = any, V = Record<string, unknown>>(
  client: Client,
  doc: Doc<T, V>,
  variables?: V,
): Subscription<T> {
  const received: T[] = [];
  const waiters: ((v: T) => void)[] = [];
  let consumed = 0;
  let endResolve!: (e: unknown) => void;
  const ended = new Promise<unknown>((r) => (endResolve = r));
  const dispose = client.subscribe<T>(
    { query: text(doc), variables: variables as Record<string, unknown> },
    {
      next: (v) => {
        if (v.errors?.length) return endResolve(v.errors);
        received.push(v.data as T);
        const w = waiters.shift();
        if (w) {
          consumed++;
          w(v.data as T);
        }
      },
      error: (e) => endResolve(e),
      complete: () => endResolve('complete'),
    },
  );
  return {
    received,
    ended,
    dispose,
    next(ms = 5000) {
      if (consumed < received.length) return Promise.resolve(received[consumed++]!);
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no event within ${ms} ms`)), ms);
        waiters.push((v) => {
          clearTimeout(timer);
          resolve(v);
        });
      });
    },
    pending: () => received.slice(consumed),
  };
}

/** A promise with its resolve exposed (for "wait until" in tests, instead of sleeps). */
export function deferred<T = void>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export interface WsOutcome<T> {
  data?: T | null;
  errors?: GqlError[];
  /** Set when the server closed the socket instead of answering. */
  close?: { code: number; reason: string };
}

/**
 * One operation over a graphql-ws client: the first result (a query's answer, or a
 * subscription's first event), or the errors the server refused it with, or the close
 * that ended the socket. The operation is completed once it has answered.
 */
export function wsExecute<T = any, V = Record<string, unknown>>(
  client: Client,
  doc: Doc<T, V>,
  variables?: V,
  ms = 5000,
): Promise<WsOutcome<T>> {
  return new Promise((resolve, reject) => {
    let dispose = () => {};
    const timer = setTimeout(() => {
      dispose();
      reject(new Error(`no answer over WebSocket within ${ms} ms`));
    }, ms);
    const settle = (o: WsOutcome<T>) => {
      clearTimeout(timer);
      dispose();
      resolve(o);
    };
    dispose = client.subscribe<T>(
      { query: text(doc), variables: variables as Record<string, unknown> },
      {
        next: (r) => settle({ data: r.data as T | null, errors: r.errors as GqlError[] | undefined }),
        error: (e) => {
          if (Array.isArray(e)) return settle({ errors: e as GqlError[] });
          const ev = e as { code?: number; reason?: string };
          if (typeof ev?.code === 'number')
            return settle({ close: { code: ev.code, reason: String(ev.reason ?? '') } });
          clearTimeout(timer);
          reject(e);
        },
        complete: () => settle({}),
      },
    );
  });
}
