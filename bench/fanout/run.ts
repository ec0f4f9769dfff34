/** The run: both systems, step by step, and the problems found. */
import pg from 'pg';

import { createFixture } from '../fixture.js';
import { startBenchDatabase } from '../postgres.js';
import { Stack } from '../stack.js';
import { measureSystem, nextSeq } from './measure.js';
import { openFiles, stopChild } from './processes.js';
import { renderFanout, type ReportContext } from './report.js';
import {
  FD_HEADROOM,
  readFanoutSettings,
  SIGNING_KEY,
  STANDALONE_SIZE,
  type FanoutOptions,
  type FanoutResult,
  type StepResult,
} from './settings.js';
import { CommitListener, prepareAudience, startSteward, type StewardProcess } from './steward.js';
import { ClientPool } from './subscribers.js';
import { floorSystem, startFloor, stewardSystem } from './systems.js';

/** Runs in progress, closed by the stand-alone signal handlers. */
export const running = new Set<Stack>();

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
        context.notes.push(
          `Organisation around them: ${Object.entries(f.rows)
            .map(([t, n]) => `${n.toLocaleString('en-US')} ${t}`)
            .join(', ')} (./fixture.ts).`,
        );
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

export function rowProblems(rows: StepResult[]): string[] {
  const out: string[] = [];
  for (const r of rows) {
    const at = `${r.system === 'steward' ? 'Steward' : 'floor'} at ${r.step.toLocaleString('en-US')}`;
    const missing = r.expected - r.received;
    if (missing > 0)
      out.push(
        `${at}: ${missing.toLocaleString('en-US')} of ${r.expected.toLocaleString('en-US')} deliveries missing after ${r.events} events (${r.late} of them came late)`,
      );
    if (r.failedOpens) out.push(`${at}: ${r.failedOpens} sockets failed to subscribe: ${r.openFailures.join('; ')}`);
    if (!r.warmup.ok) out.push(`${at}: no warm-up event reached every socket in ${r.warmup.attempts} attempts`);
    const closed = Object.entries(r.closes);
    if (closed.length)
      out.push(`${at}: the server closed sockets: ${closed.map(([k, n]) => `${n} × ${k}`).join(', ')}`);
    const odd = Object.entries(r.unexpected);
    if (odd.length) out.push(`${at}: unexpected messages: ${odd.map(([k, n]) => `${n} × ${k}`).join(', ')}`);
    if (r.duplicates) out.push(`${at}: ${r.duplicates} events received twice or out of order`);
    if (r.leaks)
      out.push(`${at}: ${r.leaks} events reached users who are not members of the project (permission leak)`);
    if (r.publishErrors.length)
      out.push(`${at}: ${r.publishErrors.length} publishes failed, e.g. ${r.publishErrors[0]}`);
  }
  return out;
}

export function logProblems(c: ReportContext): string[] {
  // Warnings and stray output are reported; errors fail the bench (a crash fails it anyway).
  const bad = (c.stewardLogs ?? []).filter((l) => l.level === 'error' || l.level === 'fatal');
  return bad.length ? [`Steward logged errors: ${bad.map((l) => `${l.count} × ${l.line}`).join('; ')}`] : [];
}
