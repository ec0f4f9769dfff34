import WebSocket from 'ws';

import type { TestServer } from './server.js';

/**
 * Resolves as soon as `condition()` holds, checking every 10 ms; rejects after `ms`
 * naming `what`. For states the test cannot await directly (a subscriber registered on
 * a server, a socket counted): cheaper and sturdier than a fixed sleep.
 */
export async function until(condition: () => boolean | Promise<boolean>, what = 'condition', ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Counts a server's live subscriptions now, and waits until `n` more have registered: a
 * subscription is live on the server (in the fan-out, hearing its topic) only once its
 * resolver ran, which the client cannot see.
 */
export function busListeners(s: TestServer) {
  const before = s.app.subscriptions;
  return {
    registered: (n = 1) => until(() => s.app.subscriptions >= before + n, `${n} more subscription(s) on ${s.app.url}`),
  };
}

export interface RawSocket {
  socket: WebSocket;
  /** Resolves when the server closes the socket. */
  closed: Promise<{ code: number; reason: string }>;
  /** Resolves when the socket is open. */
  opened: Promise<void>;
  /** Parsed messages received so far. */
  messages: { type: string; id?: string; payload?: unknown }[];
  send(message: unknown): void;
}

/** A bare WebSocket speaking graphql-transport-ws, for what a polite client never does. */
export function rawSocket(wsUrl: string, protocol = 'graphql-transport-ws'): RawSocket {
  const socket = new WebSocket(wsUrl, protocol);
  const messages: RawSocket['messages'] = [];
  socket.on('message', (data) => messages.push(JSON.parse(String(data))));
  socket.on('error', () => {}); // the close event carries what the test checks
  const opened = new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('close', (code) => reject(new Error(`closed (${code}) before opening`)));
  });
  opened.catch(() => {}); // a test that expects a refusal awaits `closed` instead
  return {
    socket,
    messages,
    opened,
    closed: new Promise((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: String(reason) }))),
    send: (m) => socket.send(typeof m === 'string' ? m : JSON.stringify(m)),
  };
}
