/** The Steward process under test, the commit listener, and the audience that subscribes. */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import pg from 'pg';

import { AccessTokens } from '../../src/modules/identity/access-token.js';
import { titleOf, type ProbeReply } from '../fanout-protocol.js';
import { freePort } from '../postgres.js';
import { exitReason, Replies, sleep, spawnNode, stopChild } from './processes.js';
import { CHANNEL, here, SIGNING_KEY, TASK_UPDATED, TOKEN_TTL_SECONDS } from './settings.js';

const METRICS_TOKEN = 'steward-bench-metrics-token-0123456789';

export interface StewardProcess {
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

export const LEVELS: Record<number, string> = { 40: 'warn', 50: 'error', 60: 'fatal' };

export async function startSteward(
  dbUrl: string,
  extraEnv: Record<string, string>,
  log: (m: string) => void,
): Promise<StewardProcess> {
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
    // In production /metrics answers only with its token: the bench scrapes the event-loop lag with it.
    METRICS_TOKEN,
    ...extraEnv,
  };
  const probe = pathToFileURL(here('../fanout-probe.js')).href;
  const child = spawnNode(
    [
      '--max-semi-space-size=64',
      '--expose-gc',
      // e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof": a profile of Steward alone, written when it stops.
      ...(process.env.BENCH_FANOUT_STEWARD_NODE_ARGS ?? '').split(' ').filter(Boolean),
      '--import',
      probe,
      here('../../src/main.js'),
    ],
    ['ignore', 'pipe', 'pipe', 'ipc'],
    env,
  );
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
      const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
      if (!res.ok) throw new Error(`Steward's /metrics answered ${res.status}`);
      const text = await res.text();
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
export class CommitListener {
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

export interface Audience {
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
export async function prepareAudience(
  dbUrl: string,
  users: number,
  outsiders: number,
  signingKey: string,
): Promise<Audience> {
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
    return {
      projectId,
      task: t[0]!,
      ownerToken: memberTokens[0]!,
      memberTokens,
      outsiderTokens: await Promise.all(others.map((u) => sign(u.id))),
    };
  } catch (err) {
    await db.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    await db.end();
  }
}
