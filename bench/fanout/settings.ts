/** What the fan-out bench measures and how hard: settings from the environment, result shapes, goals. */
import { fileURLToPath } from 'node:url';

import { DEFAULT_SIZE, type FixtureSize } from '../fixture.js';

export interface FanoutSettings {
  steps: number[];
  events: number;
  intervalMs: number;
  timeoutMs: number;
  clients: number;
  users: number;
  outsiders: number;
  concurrency: number;
  floor: boolean;
}

export interface FanoutOptions {
  log: (msg: string) => void;
  /**
   * A migrated database to run on (./run.ts's, filled or not: the bench adds users, a
   * project and a task of its own). Without it: an embedded PostgreSQL of its own with a
   * small organisation, stopped at the end.
   */
  dbUrl?: string;
  /** PostgreSQL's postmaster, for its CPU per event (known when the database is the bench's own). */
  postgresPid?: number;
  /** Extra or overriding environment of Steward's process (e.g. the caller's secrets). */
  stewardEnv?: Record<string, string>;
  /** Defaults: readFanoutSettings(). */
  settings?: FanoutSettings;
}

export interface FanoutResult {
  markdown: string;
  /** What must fail the bench: missing or late deliveries, failed sockets, leaks, errors. */
  problems: string[];
  rows: StepResult[];
}

export type SystemName = 'steward' | 'floor';

export interface StepResult {
  system: SystemName;
  /** Sockets asked for at this step (members and outsiders). */
  step: number;
  /** Member sockets subscribed: each must receive every event. */
  members: number;
  /** Sockets of non-members subscribed (Steward only): each must receive nothing. */
  outsiders: number;
  failedOpens: number;
  openFailures: string[];
  warmup: { ok: boolean; attempts: number; ms: number };
  events: number;
  /** Member sockets × events. */
  expected: number;
  /** Deliveries within BENCH_FANOUT_TIMEOUT_MS of their commit. */
  received: number;
  /** Deliveries that came after that (counted missing too). */
  late: number;
  latencyMs: { p50: number; p99: number; max: number };
  /**
   * After a full GC: the process's RSS, absolute and over its baseline per socket; the same
   * without the young generation (which does not grow with sockets); V8 heap used likewise.
   */
  rssMb: number;
  youngMb: number;
  rssKbPerConnection: number;
  rssOldKbPerConnection: number;
  heapKbPerConnection: number;
  /** Largest event-loop delay while the step's sockets connected and subscribed (warm-up included), and during the measured events. */
  loopConnectingMs: number;
  loopDeliveringMs: number;
  /** CPU per measured event: the server's process, PostgreSQL's (Steward only, when known), the subscriber processes'. */
  cpuMsPerEvent: number;
  pgCpuMsPerEvent: number;
  clientCpuMsPerEvent: number;
  /** Share of the machine's cores busy with anything else during the measured events. */
  elsewhereShare: number;
  /** Size of one next message as received. */
  messageBytes: number;
  /** Sockets the server closed, by code and reason. */
  closes: Record<string, number>;
  unexpected: Record<string, number>;
  duplicates: number;
  leaks: number;
  publishErrors: string[];
  /** Measured events' numbers (late arrivals are counted against them). */
  seqs: number[];
}

/** The goals of the performance issue. */
export const GOAL = { topStep: 19_950, kbPerConnection: 15, p99AtThousandMs: 50, floorRatio: 1.5, loopBlockMs: 250 };

/** Same as ./run.ts: tokens signed here verify there. */
export const SIGNING_KEY = 'steward-bench-signing-key-0123456789abcdef';
export const TOKEN_TTL_SECONDS = 24 * 3600;
/** What the bus publishes for a task change (src/modules/work/task.events.ts, src/events/bus.ts). */
export const CHANNEL = 'steward_events';
export const TASK_UPDATED = 'work.taskUpdated';
export const UPDATE_TASK = 'mutation P($input: UpdateTaskInput!) { updateTask(input: $input) { id } }';
/**
 * Files Steward may still open beyond those open before any socket (pool connections opened
 * under load): a step must leave room for them under its open-files limit.
 */
export const FD_HEADROOM = 16;
/**
 * A small organisation around the fan-out's own users when the bench has its own database:
 * any other kind of row ./fixture.ts can fill (prompt logs, …) left out, none being read here.
 */
export const STANDALONE_SIZE: FixtureSize = {
  ...(Object.fromEntries(Object.keys(DEFAULT_SIZE).map((k) => [k, 0])) as unknown as FixtureSize),
  users: 1000,
  projects: 20,
  membersPerProject: 10,
  tasks: 2000,
  assignees: 2000,
  approvals: 2000,
};

export const here = (rel: string) => fileURLToPath(new URL(rel, import.meta.url));

export function positiveInt(env: NodeJS.ProcessEnv, name: string, def: number, min = 1): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) throw new Error(`${name} must be an integer ≥ ${min}, got "${raw}"`);
  return v;
}

export function readFanoutSettings(env: NodeJS.ProcessEnv = process.env): FanoutSettings {
  const steps = (env.BENCH_FANOUT_STEPS || '1000,5000,10000,19950').split(',').map((s) => Number(s.trim()));
  if (!steps.length || steps.some((s, i) => !Number.isInteger(s) || s < 1 || (i > 0 && s <= steps[i - 1]!))) {
    throw new Error(`BENCH_FANOUT_STEPS must be increasing positive integers, got "${env.BENCH_FANOUT_STEPS}"`);
  }
  const s: FanoutSettings = {
    steps,
    events: positiveInt(env, 'BENCH_FANOUT_EVENTS', 25),
    intervalMs: positiveInt(env, 'BENCH_FANOUT_INTERVAL_MS', 200, 0),
    timeoutMs: positiveInt(env, 'BENCH_FANOUT_TIMEOUT_MS', 30_000, 100),
    clients: positiveInt(env, 'BENCH_FANOUT_CLIENTS', 4),
    users: positiveInt(env, 'BENCH_FANOUT_USERS', 1000),
    outsiders: positiveInt(env, 'BENCH_FANOUT_OUTSIDERS', 10, 0),
    concurrency: positiveInt(env, 'BENCH_FANOUT_CONCURRENCY', 200),
    floor: env.BENCH_FANOUT_FLOOR !== '0',
  };
  if (s.outsiders >= steps[0]!)
    throw new Error(`BENCH_FANOUT_OUTSIDERS (${s.outsiders}) must be below the first step (${steps[0]})`);
  return s;
}
