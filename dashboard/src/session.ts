/**
 * What the dashboard pages share: the sign-in form (the `login` mutation over HTTP), the
 * signed-in user's operations over HTTP, and the one graphql-ws socket whose state the
 * header's badge shows. Each page brings only what it renders.
 */
import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
import { createClient, type Client } from 'graphql-ws';

import { DashLoginDocument } from '../generated/graphql.js';

export type Doc<R, V> = DocumentTypeDecoration<R, V> & { toString(): string };

export const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

export const el = (tag: string, props: Record<string, string> = {}, ...children: (Node | string)[]) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) e.setAttribute(k, v);
  e.append(...children);
  return e;
};

const graphqlUrl = new URL('/graphql', location.href).toString();
/** The access token from the sign-in; kept in memory only, so a reload signs out. */
let token = '';

/** One operation over HTTP as the signed-in user; throws the first error's message. */
export async function http<R, V>(doc: Doc<R, V>, variables?: V): Promise<R> {
  const res = await fetch(graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query: doc.toString(), variables }),
  });
  const body = (await res.json()) as { data?: R; errors?: { message: string }[] };
  if (body.errors?.length || !body.data) throw new Error(body.errors?.[0]?.message ?? `HTTP ${res.status}`);
  return body.data;
}

/**
 * The page's socket, authenticated with the token and reconnecting for ever; the header's
 * `#state` badge and `body[data-live]` (which the browser tests wait for) follow it.
 */
export function connectLive(): Client {
  const status = $('state');
  return createClient({
    url: graphqlUrl.replace(/^http/, 'ws'),
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: Infinity,
    on: {
      connected: () => {
        status.textContent = 'live';
        status.className = 'live';
        document.body.dataset.live = 'true';
      },
      closed: () => {
        status.textContent = 'reconnecting…';
        status.className = '';
        delete document.body.dataset.live;
      },
    },
  });
}

/** Wires the `#signin` form: on success the token is kept, the header names the user and `start` runs. */
export function onSignIn(start: () => Promise<void>): void {
  $('signin').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    $('error').textContent = '';
    try {
      const r = await http(DashLoginDocument, {
        input: { login: $<HTMLInputElement>('login').value, password: $<HTMLInputElement>('password').value },
      });
      token = r.login.accessToken;
      $('who').textContent = `${r.login.user.username} (${r.login.user.role})`;
      await start();
    } catch (err) {
      $('error').textContent = (err as Error).message;
    }
  });
}
