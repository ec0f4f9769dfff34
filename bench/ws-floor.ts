/**
 * The raw-ws broadcast floor of the fan-out bench: a child process of ./fanout.ts running
 * a plain `ws` WebSocketServer that speaks just enough graphql-transport-ws for the same
 * clients (connection_ack to connection_init, pong to ping, subscriptions registered by
 * id) and nothing else: no authentication, no permission check, no GraphQL execution.
 * What Steward's fan-out costs beyond this is the price of what Steward does per event.
 *
 * On `publish` it sends every subscription the same `next` message Steward sends (the
 * same fields of the same task, the subscription's own id), the event's payload
 * serialized once and each message built by concatenation, and reports t0, taken with
 * process.hrtime.bigint() just before: the comparable instant to Steward's commit.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';
import { WebSocketServer, type WebSocket } from 'ws';

import { youngGenerationBytes, type FloorCommand, type FloorReply } from './fanout-protocol.js';

const send = (m: FloorReply) => process.send!(m);

// Like prom-client's default metrics in Steward (resolution 10 ms), so the figures compare.
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();

/** Subscription ids by socket (graphql-ws allows several per socket; the bench opens one). */
const subscriptions = new Map<WebSocket, Set<string>>();
let subscriptionCount = 0;

// Steward's limits: the same payload cap, no compression.
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 256 * 1024, perMessageDeflate: false });
wss.on('connection', (socket) => {
  const ids = new Set<string>();
  subscriptions.set(socket, ids);
  socket.on('message', (data) => {
    let m: { type?: string; id?: string };
    try {
      m = JSON.parse(data.toString());
    } catch {
      return socket.close(4400, 'Invalid message');
    }
    switch (m.type) {
      case 'connection_init':
        return socket.send('{"type":"connection_ack"}');
      case 'subscribe':
        if (typeof m.id === 'string' && !ids.has(m.id)) {
          ids.add(m.id);
          subscriptionCount++;
        }
        return;
      case 'complete':
        if (typeof m.id === 'string' && ids.delete(m.id)) subscriptionCount--;
        return;
      case 'ping':
        return socket.send('{"type":"pong"}');
    }
  });
  socket.on('error', () => {}); // a client gone mid-frame; the close follows
  socket.on('close', () => {
    subscriptionCount -= ids.size;
    subscriptions.delete(socket);
  });
});

function publish(seq: number, data: unknown): FloorReply {
  const t0 = process.hrtime.bigint();
  const payload = JSON.stringify({ data });
  let sockets = 0;
  for (const [socket, ids] of subscriptions) {
    for (const id of ids) socket.send(`{"id":${JSON.stringify(id)},"type":"next","payload":${payload}}`);
    sockets++;
  }
  return { type: 'sent', seq, t0: Number(t0), sockets, sendMs: Number(process.hrtime.bigint() - t0) / 1e6 };
}

process.on('message', (cmd: FloorCommand) => {
  switch (cmd.type) {
    case 'publish':
      return send(publish(cmd.seq, cmd.data));
    case 'count':
      return send({ type: 'count', sockets: wss.clients.size, subscriptions: subscriptionCount });
    case 'memory': {
      (globalThis as { gc?: () => void }).gc?.(); // started with --expose-gc: count what is retained, not garbage
      return send({
        type: 'memory',
        heapUsed: process.memoryUsage().heapUsed,
        youngBytes: youngGenerationBytes(getHeapSpaceStatistics()),
      });
    }
    case 'loop': {
      const maxMs = loop.max / 1e6;
      loop.reset();
      return send({ type: 'loop', maxMs });
    }
  }
});
process.on('disconnect', () => process.exit(0));

wss.on('listening', () => send({ type: 'listening', port: (wss.address() as { port: number }).port }));
