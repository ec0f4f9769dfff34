import { fork } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';

import { cpuDelta, cpuSnapshot } from './cpu.js';
import type { Fixture } from './fixture.js';
import { graphqlRequest, isGoodBody, send, type GraphQLRequest } from './http.js';
import type { LoadResult, LoadSpec } from './load.js';
import { listStatements, readStatements, resetStatements, type BenchDatabase } from './postgres.js';
import { variablesOf, type Scenario } from './scenarios.js';

export interface BenchSettings {
  /** Concurrent connections of the loaded run (BENCH_CONNECTIONS, default 32). */
  connections: number;
  /** Seconds of the loaded run (BENCH_DURATION, default 10). */
  duration: number;
  /** Seconds of the single-client run (BENCH_SINGLE_DURATION, default 5). */
  singleDuration: number;
  /** Seconds of load thrown away before measuring, so the JIT and pools are warm (BENCH_WARMUP, default 2). */
  warmup: number;
  /** Sequential requests whose statements are counted (BENCH_SQL_SAMPLES, default 5). */
  sqlSamples: number;
  /** Print each scenario's statements and every run's details (BENCH_VERBOSE=1). */
  verbose: boolean;
}

export interface ScenarioResult {
  scenario: Scenario;
  /** Size of one answer. */
  responseBytes: number;
  /** SQL statements per request (BEGIN/COMMIT included), averaged over `sqlSamples` sequential requests. */
  sqlPerRequest: number;
  loaded: LoadResult;
  single: LoadResult;
  /**
   * The server's process CPU (user + system) from the start of the loaded run until the
   * requests it left in flight are done, per request sent (see `settle`): Steward's (this
   * process) for the scenarios, the child's for the comparisons (./compare.ts).
   */
  nodeCpuMsPerRequest: number;
  /** PostgreSQL execution time over the same span, per request sent (pg_stat_statements). */
  pgExecMsPerRequest: number;
  /** CPU of PostgreSQL's processes over the same span, per request sent (/proc). */
  pgCpuMsPerRequest: number;
  /**
   * Share of the machine's CPU (all cores) busy during the loaded run with anything but
   * Steward, PostgreSQL and the load generator: other programs, and kernel time not
   * charged to a process (loopback networking). A few percent is normal; much more means
   * the figures were disturbed.
   */
  elsewhereShare: number;
  /** Requests that failed in any run (errors, timeouts, non-2xx, bodies failing the check). */
  failures: number;
  /** What failed, per run, with the first bad body. */
  failureDetails?: string;
  /** The statement counts of the scenario's `sqlScaling` variants, when it has some. */
  scaling?: ScalingResult;
}

export interface ScalingVariant {
  label: string;
  /** SQL statements per request, averaged over `sqlSamples` sequential requests. */
  sqlPerRequest: number;
  /** Mean latency of those sequential requests. */
  meanMs: number;
  responseBytes: number;
  /** Objects in the answer per field (connections' edges and nodes folded into their field), e.g. "projects 10, tasks 100". */
  rows: string;
}

export interface ScalingResult {
  variants: ScalingVariant[];
  /** Every variant ran the same number of statements per request. */
  equal: boolean;
}

export class BenchFailure extends Error {
  override name = 'BenchFailure';
}

/**
 * CPU (user + system) the measured server has used so far, ms: Steward runs in this
 * process (`ownCpuMs`, the default); the comparison servers are child processes, read
 * from /proc (`processCpuMs` of ./cpu.ts).
 */
export type CpuClock = () => number;
export const ownCpuMs: CpuClock = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** What a measurement needs: where to send the requests, and whose CPU they cost. */
export interface MeasureContext {
  graphqlUrl: string;
  fixture: Fixture;
  db: BenchDatabase;
  settings: BenchSettings;
  /** The server's CPU clock (default: this process, i.e. Steward). */
  serverCpuMs?: CpuClock;
}

/** Runs ./load.js in a child process with `spec`, so autocannon's CPU is not Steward's. */
export function runLoad(spec: LoadSpec): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(new URL('./load.js', import.meta.url)), [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let answer: { ok: true; result: LoadResult } | { ok: false; error: string } | undefined;
    child.once('message', (m) => {
      answer = m as typeof answer;
      child.disconnect(); // the child exits on disconnect
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (answer?.ok) {
        // IPC sends NaN (a run with no answer at all) as null: back to NaN for the figures.
        const l = answer.result.latencyMs as Record<string, number | null>;
        for (const k of Object.keys(l)) if (l[k] === null) l[k] = NaN;
        resolve(answer.result);
      } else
        reject(
          new Error(
            answer
              ? `load generator failed: ${answer.error}`
              : `load generator exited (code ${code}, signal ${signal}) without a result`,
          ),
        );
    });
    child.send(spec);
  });
}

const failuresOf = (r: LoadResult) => r.errors + r.timeouts + r.non2xx + r.mismatches;

function describeFailures(label: string, r: LoadResult): string {
  return (
    `${label}: ${r.errors} errors, ${r.timeouts} timeouts, ${r.non2xx} non-2xx, ${r.mismatches} bad bodies ` +
    `(status codes ${JSON.stringify(r.statusCodes)})` +
    (r.firstMismatch ? `\n  first bad body: ${r.firstMismatch}` : '')
  );
}

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);

/**
 * `sqlSamples` sequential requests (each must answer 200 with data and no errors) and
 * the SQL statements PostgreSQL ran for them (pg_stat_statements), listed when verbose.
 */
async function countStatements(
  label: string,
  request: GraphQLRequest,
  db: BenchDatabase,
  settings: BenchSettings,
): Promise<{ sqlPerRequest: number; meanMs: number; body: string }> {
  let body = '';
  await resetStatements(db);
  const started = performance.now();
  for (let i = 0; i < settings.sqlSamples; i++) {
    const r = await send(request);
    if (r.status !== 200 || !isGoodBody(r.body))
      throw new BenchFailure(`${label}: a request failed (HTTP ${r.status}): ${r.body.slice(0, 1000)}`);
    body = r.body;
  }
  const meanMs = (performance.now() - started) / settings.sqlSamples;
  const sql = await readStatements(db);
  if (settings.verbose) {
    log(`${label}: statements of ${settings.sqlSamples} requests`);
    for (const s of await listStatements(db)) {
      log(
        `  ${String(s.calls).padStart(5)} × ${s.meanMs.toFixed(3).padStart(8)} ms ${String(Math.round(s.rowsPerCall)).padStart(6)} rows  ${s.query.replace(/\s+/g, ' ').slice(0, 300)}`,
      );
    }
  }
  return { sqlPerRequest: sql.calls / settings.sqlSamples, meanMs, body };
}

/**
 * Objects in a GraphQL answer per field name, connections folded into their field
 * (`projects.edges[].node` counts as `projects`): "projects 10, tasks 100, assignees 140".
 */
export function countRows(body: string): string {
  const counts = new Map<string, number>();
  const walk = (value: unknown, field: string | null) => {
    if (Array.isArray(value)) {
      for (const v of value) walk(v, field);
    } else if (value && typeof value === 'object') {
      // A connection (an object with edges) is not a row: its nodes count under its field.
      const isConnection = 'edges' in value;
      if (field !== null && !isConnection) counts.set(field, (counts.get(field) ?? 0) + 1);
      for (const [k, v] of Object.entries(value)) {
        if (k === 'edges' && isConnection)
          walk(Array.isArray(v) ? v.map((e: { node?: unknown } | null) => e?.node) : v, field);
        else walk(v, k);
      }
    }
  };
  walk((JSON.parse(body) as { data: unknown }).data, null);
  return [...counts].map(([k, n]) => `${k} ${n.toLocaleString('en-US')}`).join(', ');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Client statements running (or waiting for a lock) in PostgreSQL, this query aside. */
async function activeStatements(db: BenchDatabase): Promise<number> {
  const { rows } = await db.admin.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND state = 'active' AND pid <> pg_backend_pid()`,
  );
  return rows[0]!.n;
}

/**
 * Waits until the server (Steward, this process, unless `serverCpuMs` says otherwise) and
 * PostgreSQL are idle again. autocannon stops at the end of its duration without waiting
 * for the requests still in flight, but the server computes them all the same: for a slow
 * query, up to `connections` requests' worth of work. Without waiting, that work would
 * land in the next run, raising its CPU per request and the latency of its first requests.
 * Idle: two 100 ms intervals in a row in which the server and PostgreSQL together used
 * less than 10 ms of CPU and no statement was running in PostgreSQL (statements waiting
 * for locks use no CPU). Gives up after `maxMs`.
 */
export async function settle(db: BenchDatabase, maxMs = 15_000, serverCpuMs: CpuClock = ownCpuMs): Promise<number> {
  const started = performance.now();
  const pgPid = db.pid();
  let quiet = 0;
  let node = serverCpuMs();
  let pg = cpuSnapshot(pgPid).postgresMs;
  while (quiet < 2 && performance.now() - started < maxMs) {
    await sleep(100);
    const n = serverCpuMs();
    const p = cpuSnapshot(pgPid).postgresMs;
    const busyMs = (Number.isFinite(n - node) ? n - node : 0) + (Number.isFinite(p - pg) ? p - pg : 0);
    // Statements waiting for a lock use no CPU: idle also means no statement running.
    quiet = busyMs < 10 && (await activeStatements(db)) === 0 ? quiet + 1 : 0;
    node = n;
    pg = p;
  }
  return performance.now() - started;
}

/**
 * The statement counts of a scenario's `sqlScaling` variants, one after the other, by
 * the same sequential requests as SQL/req. `equal` is false when they differ.
 */
export async function measureScaling(scenario: Scenario, ctx: MeasureContext): Promise<ScalingResult | undefined> {
  if (!scenario.sqlScaling?.length) return undefined;
  const token = scenario.as === null ? null : ctx.fixture.tokens[scenario.as];
  const variants: ScalingVariant[] = [];
  for (const v of scenario.sqlScaling) {
    const request = graphqlRequest(ctx.graphqlUrl, v.query, variablesOf(v.variables, ctx.fixture), token);
    // One unmeasured request first, as for the scenario itself.
    const probe = await send(request);
    if (probe.status !== 200 || !isGoodBody(probe.body)) {
      throw new BenchFailure(
        `${scenario.name} · ${v.label}: the probe request failed (HTTP ${probe.status}): ${probe.body.slice(0, 1000)}`,
      );
    }
    const r = await countStatements(`${scenario.name} · ${v.label}`, request, ctx.db, ctx.settings);
    variants.push({
      label: v.label,
      sqlPerRequest: r.sqlPerRequest,
      meanMs: r.meanMs,
      responseBytes: Buffer.byteLength(r.body),
      rows: countRows(r.body),
    });
  }
  return { variants, equal: variants.every((v) => v.sqlPerRequest === variants[0]!.sqlPerRequest) };
}

/**
 * Measures one scenario:
 * 1. probe: one request must answer 200 with data and no errors (its body becomes the
 *    expected body under load for 'same-body' scenarios);
 * 2. SQL: `sqlSamples` sequential requests, statements counted by pg_stat_statements;
 * 3. warm-up at full concurrency (discarded), then `settle`;
 * 4. loaded run at `connections`, with the server's (`ctx.serverCpuMs`, Steward's by
 *    default) and PostgreSQL's CPU and PostgreSQL's execution time, counted until the
 *    requests it left in flight are done (`settle`) and divided by the requests it sent;
 * 5. single-client run (1 connection), then `settle`.
 * Failed requests are counted in `failures` (with details); the caller fails the bench.
 */
export async function measureScenario(scenario: Scenario, ctx: MeasureContext): Promise<ScenarioResult> {
  const { settings, db } = ctx;
  const serverCpuMs = ctx.serverCpuMs ?? ownCpuMs;
  const token = scenario.as === null ? null : ctx.fixture.tokens[scenario.as];
  const perConnection = scenario
    .perConnection?.(ctx.fixture)
    .map((r) => graphqlRequest(ctx.graphqlUrl, scenario.query, r.variables, r.token));
  if (perConnection && !perConnection.length)
    throw new BenchFailure(`${scenario.name}: the fixture gave no request per connection`);
  const request: GraphQLRequest =
    perConnection?.[0] ??
    graphqlRequest(ctx.graphqlUrl, scenario.query, variablesOf(scenario.variables, ctx.fixture), token);

  const probe = await send(request);
  if (probe.status !== 200 || !isGoodBody(probe.body)) {
    throw new BenchFailure(
      `${scenario.name}: the probe request failed (HTTP ${probe.status}): ${probe.body.slice(0, 1000)}`,
    );
  }
  const expectBody = (scenario.check ?? 'same-body') === 'same-body' ? probe.body : undefined;

  const { sqlPerRequest } = await countStatements(scenario.name, request, db, settings);

  const spec = (connections: number, duration: number): LoadSpec => ({
    request,
    connections,
    duration,
    expectBody,
    perConnection: connections > 1 ? perConnection : undefined,
  });
  const runs: [string, LoadResult][] = [];

  if (settings.warmup > 0) runs.push(['warm-up', await runLoad(spec(settings.connections, settings.warmup))]);
  await settle(db, undefined, serverCpuMs);

  await resetStatements(db);
  const pgPid = db.pid();
  const machineBefore = cpuSnapshot(pgPid);
  const cpuBefore = serverCpuMs();
  const wallBefore = performance.now();
  const loaded = await runLoad(spec(settings.connections, settings.duration));
  const tailMs = await settle(db, undefined, serverCpuMs);
  const wallMs = performance.now() - wallBefore;
  const nodeCpuMs = serverCpuMs() - cpuBefore;
  const machine = cpuDelta(machineBefore, cpuSnapshot(pgPid));
  const pg = await readStatements(db);
  runs.push([`${settings.connections} connections`, loaded]);

  const single = await runLoad(spec(1, settings.singleDuration));
  runs.push(['1 connection', single]);
  await settle(db, undefined, serverCpuMs);

  if (settings.verbose) {
    for (const [label, r] of runs)
      log(`${scenario.name} · ${label}: ${JSON.stringify({ ...r, firstMismatch: undefined })}`);
    log(
      `${scenario.name}: ${loaded.sent - loaded.requests} request(s) left in flight by the loaded run, done ${Math.round(tailMs)} ms after it`,
    );
  }

  const failed = runs.filter(([, r]) => failuresOf(r) > 0);
  return {
    scenario,
    responseBytes: Buffer.byteLength(probe.body),
    sqlPerRequest,
    loaded,
    single,
    nodeCpuMsPerRequest: loaded.sent ? nodeCpuMs / loaded.sent : NaN,
    pgExecMsPerRequest: loaded.sent ? pg.execMs / loaded.sent : NaN,
    pgCpuMsPerRequest: loaded.sent ? machine.postgresMs / loaded.sent : NaN,
    elsewhereShare: (machine.machineMs - nodeCpuMs - loaded.cpuMs - machine.postgresMs) / (wallMs * cpus().length),
    failures: failed.reduce((n, [, r]) => n + failuresOf(r), 0),
    failureDetails: failed.length
      ? failed.map(([label, r]) => describeFailures(`${scenario.name} · ${label}`, r)).join('\n')
      : undefined,
  };
}
