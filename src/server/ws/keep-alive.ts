import type { WebSocket, WebSocketServer } from 'ws';

import type { SocketState } from './socket.js';

const TICKS_PER_ROUND = 50;

/**
 * One keep-alive sweep for every socket instead of a timer per socket, spread over the
 * interval: each of its ticks pings the next slice of the sockets, so that a round never
 * sends tens of thousands of pings (and receives their pongs) at once, in the way of an
 * event's fan-out. A socket that has neither answered its previous ping nor sent anything
 * by its turn in the next round is dead, and dropped. `visit` sees each open socket once
 * per round first (credentials that ran out); when it closes the socket, that is all.
 * Returns the sweep's stop.
 */
export function startKeepAlive(
  wss: WebSocketServer,
  states: WeakMap<WebSocket, SocketState>,
  intervalMs: number,
  visit: (state: SocketState, now: number) => boolean,
): () => void {
  let round: WebSocket[] = [];
  let next = 0;
  const sweep = setInterval(
    () => {
      if (next >= round.length) {
        round = [...wss.clients];
        next = 0;
      }
      const end = Math.min(round.length, next + Math.ceil(round.length / TICKS_PER_ROUND));
      const now = Date.now();
      for (; next < end; next++) {
        const socket = round[next]!;
        const state = states.get(socket);
        if (!state || socket.readyState !== socket.OPEN) continue;
        if (visit(state, now)) continue;
        if (!state.alive) {
          // Given at least half an interval to answer (a round's order shifts as sockets leave).
          if (now - state.pingedAt >= intervalMs / 2) socket.terminate();
          continue;
        }
        state.alive = false;
        state.pingedAt = now;
        socket.ping();
      }
    },
    Math.max(1, Math.round(intervalMs / TICKS_PER_ROUND)),
  );
  sweep.unref();
  return () => clearInterval(sweep);
}
