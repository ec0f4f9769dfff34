/**
 * Subscribers of the fan-out bench: one child process of ./fanout.ts holding thousands
 * of WebSockets. Each speaks the graphql-transport-ws protocol by hand on `ws`
 * (connection_init → connection_ack → subscribe → next…, pong to ping): a full graphql-ws
 * client per socket would cost this process far more memory and CPU than the server
 * spends, and the same lean client serves Steward and the raw-ws floor alike.
 *
 * A socket stamps each message with process.hrtime.bigint() (CLOCK_MONOTONIC, the same
 * clock in every process of the machine) before anything else, then reads the event's
 * number from the task's title. Receipt times are kept per event and sent to the
 * coordinator once every member socket of this process has the event, or when the
 * coordinator says its time is up: one IPC message per event, not per delivery.
 */
import WebSocket from 'ws';

import {
  seqOf,
  SUBPROTOCOL,
  SUBSCRIPTION,
  type ClientCommand,
  type ClientInit,
  type ClientReply,
  type ClientStats,
} from './fanout-protocol.js';

interface Sock {
  ws: WebSocket;
  /** A member of the project (it must receive every event), or an outsider (it must receive none). */
  member: boolean;
  /** The last event it received, to catch duplicates and disorder. */
  lastSeq: number;
}

let init: ClientInit | undefined;
const sockets = new Set<Sock>();
/** Member sockets subscribed and still open: an event is complete here when it reached this many. */
let members = 0;
let outsiders = 0;
/** Member sockets created so far (failed ones included): the next one is socket number index + count × created of the step. */
let created = 0;
/** Set while closeAll closes the sockets on purpose. */
let closing = false;

/** Receipt times (ns) of events still arriving, by event. */
const pending = new Map<number, number[]>();
/** Events already sent to the coordinator: later arrivals are late. */
const reported = new Set<number>();

const emptyStats = (): ClientStats => ({ closes: {}, unexpected: {}, late: {}, duplicates: 0, leaks: 0, cpuMs: 0 });
let stats = emptyStats();
let cpuMark = process.cpuUsage();

const send = (m: ClientReply) => process.send!(m);
const bump = (counts: Record<string, number>, key: string) => {
  counts[key] = (counts[key] ?? 0) + 1;
};

function report(seq: number) {
  const times = pending.get(seq) ?? [];
  pending.delete(seq);
  reported.add(seq);
  send({ type: 'event', seq, times: Float64Array.from(times) });
}

/** After a member socket went away fewer arrivals complete an event. */
function completeWaiting() {
  for (const [seq, times] of pending) if (times.length >= members) report(seq);
}

function onMessage(s: Sock, data: WebSocket.RawData) {
  const t = Number(process.hrtime.bigint()); // first: what follows is the client's cost, not the server's
  const text = data.toString();
  let m: { type?: string; payload?: { data?: { taskUpdated?: { title?: unknown } } } };
  try {
    m = JSON.parse(text);
  } catch {
    bump(stats.unexpected, `not JSON: ${text.slice(0, 80)}`);
    return;
  }
  if (m.type === 'next') {
    if (!s.member) {
      stats.leaks++;
      return;
    }
    stats.sample ??= text;
    const seq = seqOf(m.payload?.data?.taskUpdated?.title);
    if (seq === undefined) {
      bump(stats.unexpected, `next: ${JSON.stringify(m.payload).slice(0, 200)}`);
      return;
    }
    if (seq <= s.lastSeq) {
      stats.duplicates++;
      return;
    }
    s.lastSeq = seq;
    if (reported.has(seq)) {
      stats.late[seq] = (stats.late[seq] ?? 0) + 1;
      return;
    }
    let times = pending.get(seq);
    if (!times) pending.set(seq, (times = []));
    times.push(t);
    if (times.length >= members) report(seq);
  } else if (m.type === 'ping') {
    s.ws.send('{"type":"pong"}');
  } else if (m.type !== 'pong') {
    bump(stats.unexpected, `${m.type}: ${JSON.stringify(m.payload ?? null).slice(0, 200)}`);
  }
}

/** One socket up to its subscribe message; resolves with an error message if it never got there. */
function connect(
  url: string,
  token: string,
  id: string,
  member: boolean,
  variables: Record<string, unknown>,
): Promise<string | undefined> {
  return new Promise((resolve) => {
    // No compression: neither Steward nor the floor offers it, and it would only cost CPU here.
    const ws = new WebSocket(url, SUBPROTOCOL, { perMessageDeflate: false, handshakeTimeout: 60_000 });
    const s: Sock = { ws, member, lastSeq: -1 };
    let subscribed = false;
    let settled = false;
    // A server that never acknowledges must not hang the step.
    const timer = setTimeout(() => {
      settle('no connection_ack within 60 s');
      ws.terminate();
    }, 60_000);
    const settle = (err?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(err);
    };
    ws.on('open', () =>
      ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } })),
    );
    ws.on('message', (data) => {
      if (subscribed) return onMessage(s, data);
      const m = JSON.parse(data.toString()) as { type?: string };
      if (m.type === 'ping') return ws.send('{"type":"pong"}');
      if (m.type !== 'connection_ack') {
        settle(`${m.type} before connection_ack`);
        return ws.terminate();
      }
      ws.send(JSON.stringify({ id, type: 'subscribe', payload: { query: SUBSCRIPTION, variables } }));
      subscribed = true;
      sockets.add(s);
      if (member) members++;
      else outsiders++;
      settle();
    });
    ws.on('error', (err) => settle(err.message)); // a close follows
    ws.on('close', (code, reason) => {
      settle(`closed before connection_ack: ${code} ${reason.toString()}`);
      if (!subscribed) return;
      sockets.delete(s);
      if (member) members--;
      else outsiders--;
      if (!closing) bump(stats.closes, `${code} ${reason.toString()}`.trim());
      if (member) completeWaiting();
    });
  });
}

async function open(url: string, total: number, outsiderTarget: number): Promise<ClientReply> {
  const c = init!;
  const jobs: { token: string; id: string; member: boolean }[] = [];
  for (let k = outsiders; k < outsiderTarget; k++)
    jobs.push({ token: c.outsiderTokens[k % c.outsiderTokens.length]!, id: `o${c.index}-${k}`, member: false });
  for (let k = members; k < total; k++) {
    const i = c.index + c.count * created++;
    jobs.push({ token: c.tokens[i % c.tokens.length]!, id: `s${i}`, member: true });
  }
  let failed = 0;
  const failures: Record<string, number> = {};
  let next = 0;
  // At most `concurrency` handshakes at once: thousands of simultaneous SYNs overflow the listen backlog.
  const worker = async () => {
    while (next < jobs.length) {
      const j = jobs[next++]!;
      const err = await connect(url, j.token, j.id, j.member, c.variables);
      if (err) {
        failed++;
        bump(failures, err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(c.concurrency, jobs.length) }, worker));
  return {
    type: 'opened',
    members,
    outsiders,
    failed,
    failures: Object.entries(failures).map(([m, n]) => `${n} × ${m}`),
  };
}

async function closeAll(): Promise<void> {
  closing = true;
  const all = [...sockets].map(
    (s) =>
      new Promise<void>((resolve) => {
        if (s.ws.readyState === WebSocket.CLOSED) return resolve();
        s.ws.once('close', () => resolve());
        s.ws.close(1000, 'bench done');
        // A server too busy to answer the close handshake is not waited for.
        setTimeout(() => s.ws.terminate(), 10_000).unref();
      }),
  );
  await Promise.all(all);
  sockets.clear();
  pending.clear();
  members = outsiders = created = 0;
  closing = false;
}

process.on('message', (cmd: ClientCommand) => {
  switch (cmd.type) {
    case 'init':
      init = cmd;
      return;
    case 'open':
      void open(cmd.url, cmd.total, cmd.outsiders).then(send);
      return;
    case 'collect':
      if (!reported.has(cmd.seq)) report(cmd.seq);
      return;
    case 'stats': {
      const cpu = process.cpuUsage(cpuMark);
      cpuMark = process.cpuUsage();
      send({ type: 'stats', stats: { ...stats, cpuMs: (cpu.user + cpu.system) / 1000 } });
      stats = emptyStats();
      return;
    }
    case 'closeAll':
      void closeAll().then(() => send({ type: 'closed' }));
      return;
  }
});
// The coordinator is gone (it ended, or was killed): so are we.
process.on('disconnect', () => process.exit(0));
