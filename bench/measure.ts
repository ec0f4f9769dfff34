import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';
import { cpuDelta, cpuSnapshot } from './cpu.js';
import type { Fixture } from './fixture.js';
import { graphqlRequest, isGoodBody, send, type GraphQLRequest } from './http.js';
import type { LoadResult, LoadSpec } from './load.js';
import { listStatements, readStatements, resetStatements, type BenchDatabase } from './postgres.js';
import type { Scenario } from './scenarios.js';

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
  /** Steward's process CPU (user + system) during the loaded run, per request. */
  nodeCpuMsPerRequest: number;
  /** PostgreSQL execution time during the loaded run, per request (pg_stat_statements). */
  pgExecMsPerRequest: number;
  /** CPU of PostgreSQL's processes during the loaded run, per request (/proc). */
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
}

export class BenchFailure extends Error {
  override name = 'BenchFailure';
}

/** Runs ./load.js in a child process with `spec`, so autocannon's CPU is not Steward's. */
export function runLoad(spec: LoadSpec): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(new URL('./load.js', import.meta.url)), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let answer: { ok: true; result: LoadResult } | { ok: false; error: string } | undefined;
    child.once('message', (m) => {
      answer = m as typeof answer;
      child.disconnect(); // the child exits on disconnect
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (answer?.ok) resolve(answer.result);
      else reject(new Error(answer ? `load generator failed: ${answer.error}` : `load generator exited (code ${code}, signal ${signal}) without a result`));
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
 * Measures one scenario:
 * 1. probe: one request must answer 200 with data and no errors (its body becomes the
 *    expected body under load for 'same-body' scenarios);
 * 2. SQL: `sqlSamples` sequential requests, statements counted by pg_stat_statements;
 * 3. warm-up at full concurrency (discarded);
 * 4. loaded run at `connections`, with Steward's and PostgreSQL's CPU and PostgreSQL's
 *    execution time;
 * 5. single-client run (1 connection).
 * Failed requests are counted in `failures` (with details); the caller fails the bench.
 */
export async function measureScenario(scenario: Scenario, ctx: { graphqlUrl: string; fixture: Fixture; db: BenchDatabase; settings: BenchSettings }): Promise<ScenarioResult> {
  const { settings, db } = ctx;
  const token = scenario.as === null ? null : ctx.fixture.tokens[scenario.as];
  const request: GraphQLRequest = graphqlRequest(ctx.graphqlUrl, scenario.query, scenario.variables, token);

  const probe = await send(request);
  if (probe.status !== 200 || !isGoodBody(probe.body)) {
    throw new BenchFailure(`${scenario.name}: the probe request failed (HTTP ${probe.status}): ${probe.body.slice(0, 1000)}`);
  }
  const expectBody = (scenario.check ?? 'same-body') === 'same-body' ? probe.body : undefined;

  await resetStatements(db);
  for (let i = 0; i < settings.sqlSamples; i++) {
    const r = await send(request);
    if (r.status !== 200 || !isGoodBody(r.body)) throw new BenchFailure(`${scenario.name}: a request failed (HTTP ${r.status}): ${r.body.slice(0, 1000)}`);
  }
  const sql = await readStatements(db);
  const sqlPerRequest = sql.calls / settings.sqlSamples;
  if (settings.verbose) {
    log(`${scenario.name}: statements of ${settings.sqlSamples} requests`);
    for (const s of await listStatements(db)) log(`  ${String(s.calls).padStart(5)} × ${s.query.replace(/\s+/g, ' ').slice(0, 200)}`);
  }

  const spec = (connections: number, duration: number): LoadSpec => ({ request, connections, duration, expectBody });
  const runs: [string, LoadResult][] = [];

  if (settings.warmup > 0) runs.push(['warm-up', await runLoad(spec(settings.connections, settings.warmup))]);

  await resetStatements(db);
  const pgPid = db.pid();
  const machineBefore = cpuSnapshot(pgPid);
  const cpuBefore = process.cpuUsage();
  const wallBefore = performance.now();
  const loaded = await runLoad(spec(settings.connections, settings.duration));
  const wallMs = performance.now() - wallBefore;
  const cpu = process.cpuUsage(cpuBefore);
  const machine = cpuDelta(machineBefore, cpuSnapshot(pgPid));
  const pg = await readStatements(db);
  const nodeCpuMs = (cpu.user + cpu.system) / 1000;
  runs.push([`${settings.connections} connections`, loaded]);

  const single = await runLoad(spec(1, settings.singleDuration));
  runs.push(['1 connection', single]);

  if (settings.verbose) for (const [label, r] of runs) log(`${scenario.name} · ${label}: ${JSON.stringify({ ...r, firstMismatch: undefined })}`);

  const failed = runs.filter(([, r]) => failuresOf(r) > 0);
  return {
    scenario,
    responseBytes: Buffer.byteLength(probe.body),
    sqlPerRequest,
    loaded,
    single,
    nodeCpuMsPerRequest: loaded.requests ? nodeCpuMs / loaded.requests : NaN,
    pgExecMsPerRequest: loaded.requests ? pg.execMs / loaded.requests : NaN,
    pgCpuMsPerRequest: loaded.requests ? machine.postgresMs / loaded.requests : NaN,
    elsewhereShare: (machine.machineMs - nodeCpuMs - loaded.cpuMs - machine.postgresMs) / (wallMs * cpus().length),
    failures: failed.reduce((n, [, r]) => n + failuresOf(r), 0),
    failureDetails: failed.length ? failed.map(([label, r]) => describeFailures(`${scenario.name} · ${label}`, r)).join('\n') : undefined,
  };
}
