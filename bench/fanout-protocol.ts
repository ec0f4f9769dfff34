/**
 * What the fan-out bench's processes say to each other (./fanout.ts, the coordinator;
 * ./fanout-clients.ts, the subscribers; ./ws-floor.ts, the raw-ws floor) over Node's IPC
 * channel, with `serialization: 'advanced'` so that receipt times travel as Float64Arrays.
 */

/** graphql-ws's subprotocol; the floor speaks it too, so the clients are the same for both. */
export const SUBPROTOCOL = 'graphql-transport-ws';

/** Every subscriber's operation: one subscription per socket. */
export const SUBSCRIPTION =
  'subscription F($projectId: ID) { taskUpdated(projectId: $projectId) { id title status priority updatedAt } }';

/** The task's title at event `seq`: a client reads the event's number back from what it receives. */
export const titleOf = (seq: number) => `fan-out event ${seq}`;
const TITLE = /^fan-out event (\d+)$/;
export const seqOf = (title: unknown): number | undefined => {
  const m = typeof title === 'string' ? TITLE.exec(title) : null;
  return m ? Number(m[1]) : undefined;
};

/** A client process's share of the step's sockets: socket i of the whole step uses user i mod users. */
export interface ClientInit {
  type: 'init';
  /** This process's number and how many there are: its sockets are i = index, index + count, … */
  index: number;
  count: number;
  /** connection_init's authorization per member user; the socket's user is i mod tokens.length. */
  tokens: string[];
  /** Sockets of users who are not members of the project: they must receive nothing. */
  outsiderTokens: string[];
  variables: Record<string, unknown>;
  /** Handshakes in flight at once in this process. */
  concurrency: number;
}

export type ClientCommand =
  | ClientInit
  /** Open sockets until this process has `total` (members), plus its outsiders once. */
  | { type: 'open'; url: string; total: number; outsiders: number }
  /** Report event `seq` now, with whatever arrived (its time is up). */
  | { type: 'collect'; seq: number }
  /** Counters since the last `stats`. */
  | { type: 'stats' }
  /** Close every socket (the system under test is about to go away, or the run is over). */
  | { type: 'closeAll' };

export type ClientReply =
  /** Sockets of this process subscribed (members and outsiders), and those that failed to get there, with why. */
  | { type: 'opened'; members: number; outsiders: number; failed: number; failures: string[] }
  /**
   * Event `seq` reached every member socket of this process (complete) or its time was
   * up (collect): receipt times (process.hrtime.bigint() as a Number, ns) of the sockets
   * that had it.
   */
  | { type: 'event'; seq: number; times: Float64Array }
  | { type: 'stats'; stats: ClientStats }
  | { type: 'closed' };

export interface ClientStats {
  /** Sockets closed without being asked to, by "code reason". */
  closes: Record<string, number>;
  /** Protocol messages other than next/ping/pong (error, complete, unknown), by type and message. */
  unexpected: Record<string, number>;
  /** Arrivals of an event after it was reported, by seq (too late to count). */
  late: Record<number, number>;
  /** An event received twice by one socket, or before an earlier one. */
  duplicates: number;
  /** next messages that outsiders received: each one is a permission leak. */
  leaks: number;
  /** One next message as received, for its size. */
  sample?: string;
  /** This process's CPU (user + system) since the last stats, ms. */
  cpuMs: number;
}

export type FloorCommand =
  | { type: 'publish'; seq: number; data: unknown }
  | { type: 'count' }
  /** Full GC, then memoryUsage(). */
  | { type: 'memory' }
  /** The largest event-loop delay since the last `loop`, then reset. */
  | { type: 'loop' };

export type FloorReply =
  | { type: 'listening'; port: number }
  /** t0: process.hrtime.bigint() just before the first send, as a Number (ns). */
  | { type: 'sent'; seq: number; t0: number; sockets: number; sendMs: number }
  | { type: 'count'; sockets: number; subscriptions: number }
  | { type: 'memory'; heapUsed: number; youngBytes: number }
  | { type: 'loop'; maxMs: number };

/** What the probe preloaded into Steward's process answers (./fanout-probe.ts). */
export type ProbeReply = { type: 'gc'; heapUsed: number; youngBytes: number; ms: number };

/**
 * Physical memory of V8's young generation (new space and its large objects). It grows
 * under allocation up to twice --max-semi-space-size and stays committed after a full GC,
 * so it sits in RSS whatever the number of sockets.
 */
export function youngGenerationBytes(spaces: { space_name: string; physical_space_size: number }[]): number {
  return spaces
    .filter((s) => s.space_name === 'new_space' || s.space_name === 'new_large_object_space')
    .reduce((n, s) => n + s.physical_space_size, 0);
}
