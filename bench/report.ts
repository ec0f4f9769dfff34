import { cpus, totalmem } from 'node:os';

import type { ComparisonResult } from './compare.js';
import type { Fixture } from './fixture.js';
import type { BenchSettings, ScenarioResult } from './measure.js';

export interface ReportInput {
  /** Every measured row, in table order (a scenario's comparisons right after it). */
  results: ScenarioResult[];
  /** The comparisons of ./compare.ts that ran: the ratios and goals under the table. */
  comparisons?: ComparisonResult[];
  settings: BenchSettings;
  fixture: Fixture;
  postgresVersion: string;
  startedAt: Date;
  /** Seconds from start to the end of the last run. */
  seconds: number;
}

const fmt = (v: number, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : '–');
const int = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '–');
const sqlCount = (v: number) => (Number.isInteger(v) ? String(v) : fmt(v, 2));
/** a ÷ b, two significant digits below 10 ("0.14×", "0.0037×", "1.0×"), whole above ("118×"). */
function ratio(a: number, b: number): string {
  const r = a / b;
  if (!Number.isFinite(r)) return '–';
  return `${r >= 10 ? Math.round(r) : r === 0 ? '0' : r.toPrecision(2)}×`;
}

/**
 * A comparison of ./compare.ts: Steward's scenario and each contender side by side with
 * Steward ÷ contender, then the issue's goals, each met or not, and what was compared.
 */
function renderComparison(c: ComparisonResult, connections: number): string {
  const s = c.steward;
  const others = c.contenders.map((x) => x.result);
  const figures: [string, (r: typeof s) => number, (v: number) => string][] = [
    [`req/s (${connections} conn)`, (r) => r.loaded.requestsPerSecond, int],
    ['req/s (1 conn)', (r) => r.single.requestsPerSecond, int],
    [`p50 ms (${connections} conn)`, (r) => r.loaded.latencyMs.p50, (v) => fmt(v, 1)],
    ['p50 ms (1 conn)', (r) => r.single.latencyMs.p50, (v) => fmt(v, 2)],
    ['Node CPU ms/req', (r) => r.nodeCpuMsPerRequest, (v) => fmt(v, 2)],
    ['PG CPU ms/req', (r) => r.pgCpuMsPerRequest, (v) => fmt(v, 2)],
    ['SQL/req', (r) => r.sqlPerRequest, sqlCount],
    ['answer bytes', (r) => r.responseBytes, int],
  ];
  const header = [
    '',
    'Steward',
    ...c.contenders.map((x) => x.contender.name),
    ...c.contenders.map((x) => `Steward ÷ ${x.contender.short}`),
  ];
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const rows = figures.map(([label, get, show]) => [
    label,
    show(get(s)),
    ...others.map((o) => show(get(o))),
    ...others.map((o) => ratio(get(s), get(o))),
  ]);

  const { comparison } = c;
  const maxSql = comparison.depth + 1;
  const rivals = c.contenders.filter((x) => x.contender.rival);
  const met = (ok: boolean) => (ok ? 'met' : '**not met**');
  const goals = [
    `- SQL statements per request ≤ depth + 1 = ${maxSql} (depth ${comparison.depth}: ${comparison.levels.join(', ')}; one statement per level and one to authenticate): ` +
      `${sqlCount(s.sqlPerRequest)} — ${met(s.sqlPerRequest <= maxSql)}`,
    ...rivals.map(
      ({ contender: o, result: r }) =>
        `- req/s ≥ ${o.name}'s, at ${connections} connections: ${int(s.loaded.requestsPerSecond)} vs ${int(r.loaded.requestsPerSecond)} — ` +
        `${met(s.loaded.requestsPerSecond >= r.loaded.requestsPerSecond)} (at 1 connection, for information: ${int(s.single.requestsPerSecond)} vs ${int(r.single.requestsPerSecond)})`,
    ),
    `- Node CPU ≤ ${comparison.maxNodeCpuMsPerRequest} ms/req: ${fmt(s.nodeCpuMsPerRequest, 2)} — ${met(s.nodeCpuMsPerRequest <= comparison.maxNodeCpuMsPerRequest)}`,
  ];
  const same = c.contenders.map(
    (x) =>
      `- ${x.contender.name}: ` +
      (x.equivalence.equal
        ? `same answer as Steward (${x.equivalence.compared}; ids compared level by level, in order)`
        : `**NOT Steward's answer: FAILED** (${x.equivalence.difference})`),
  );
  return [
    `\`${c.scenario.name}\` against ${c.contenders.map((x) => x.contender.name).join(' and ')} (same database, same harness; rows \`${c.scenario.name} — …\` above):`,
    '',
    line(header),
    line(header.map((_, i) => (i === 0 ? '---' : '---:'))),
    ...rows.map(line),
    '',
    'Steward ÷ other: above 1× Steward is ahead in req/s; below 1× it is ahead in the rest (ms, CPU, statements, bytes).',
    '',
    `Goals (the performance issue; reported, never failed):`,
    '',
    ...goals,
    '',
    'Equivalence (checked before measuring; the bench fails on any difference):',
    '',
    ...same,
  ].join('\n');
}

/**
 * A markdown table: one row per scenario (each followed by its comparisons' rows), the
 * comparisons' ratios and goals, then the machine, the data and the settings. Other
 * benches append sections of their own to the written file after it (./run.ts: the
 * audited writes of ./audit.ts, and the place for the subscription fan-out).
 */
export function renderReport(r: ReportInput): string {
  const c = r.settings.connections;
  const header = [
    'scenario',
    `req/s (${c} conn)`,
    'p50 ms',
    'p99 ms',
    'failed',
    'req/s (1 conn)',
    '1-conn p50 ms',
    '1-conn p99 ms',
    'SQL/req',
    'Node CPU ms/req',
    'PG CPU ms/req',
    'PG exec ms/req',
    'answer bytes',
    'busy elsewhere',
  ];
  const rows = r.results.map((x) => [
    `\`${x.scenario.name}\``,
    int(x.loaded.requestsPerSecond),
    fmt(x.loaded.latencyMs.p50),
    fmt(x.loaded.latencyMs.p99),
    String(x.failures),
    int(x.single.requestsPerSecond),
    fmt(x.single.latencyMs.p50, 2),
    fmt(x.single.latencyMs.p99, 2),
    Number.isInteger(x.sqlPerRequest) ? String(x.sqlPerRequest) : fmt(x.sqlPerRequest, 2),
    fmt(x.nodeCpuMsPerRequest, 2),
    fmt(x.pgCpuMsPerRequest, 2),
    fmt(x.pgExecMsPerRequest, 3),
    int(x.responseBytes),
    Number.isFinite(x.elsewhereShare) ? `${Math.round(Math.max(0, x.elsewhereShare) * 100)}%` : '–',
  ]);
  const right = new Set(header.map((_, i) => i).filter((i) => i > 0));
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const table = [line(header), line(header.map((_, i) => (right.has(i) ? '---:' : '---'))), ...rows.map(line)].join(
    '\n',
  );

  const scaled = r.results.filter((x) => x.scaling);
  const scalingHeader = [
    'scenario',
    'size',
    'SQL/req',
    'same SQL/req?',
    'ms/req (1 conn)',
    'answer bytes',
    'rows in the answer',
  ];
  const scalingRows = scaled.flatMap((x) =>
    x.scaling!.variants.map((v) => [
      `\`${x.scenario.name}\``,
      v.label,
      Number.isInteger(v.sqlPerRequest) ? String(v.sqlPerRequest) : fmt(v.sqlPerRequest, 2),
      x.scaling!.equal ? 'yes' : '**NO: FAILED**',
      fmt(v.meanMs, 1),
      int(v.responseBytes),
      v.rows,
    ]),
  );
  const scalingTable = scaled.length
    ? [
        '',
        'SQL statements per request of the same query shape at other sizes (they must be equal: statements grow with depth, never with rows; the bench fails otherwise):',
        '',
        line(scalingHeader),
        line(scalingHeader.map((_, i) => (i >= 2 && i <= 5 ? '---:' : '---'))),
        ...scalingRows.map(line),
      ].join('\n')
    : '';

  const comparisons = (r.comparisons ?? []).map((x) => renderComparison(x, c));

  // Headline figures of scenarios with a unit (the metered AI calls of issue 4).
  const local = r.fixture.localProvider;
  const headlines = r.results
    .filter((x) => x.scenario.unit)
    .map(
      (x) =>
        `**${x.scenario.unit}/s: ${int(x.loaded.requestsPerSecond)} at ${c} connections, ${int(x.single.requestsPerSecond)} at 1 connection** ` +
        `(\`${x.scenario.name}\`: \`sendMessage\` answered by the LOCAL provider "${local.name}", model ${local.model}; each call the whole metered pipeline: ` +
        `user check, governance, quota reservation, provider call, settlement with prompt log, cost record, usage and both messages; ` +
        (x.scenario.perConnection
          ? `each of the ${c} connections a user of its own with its own conversation (${r.fixture.meteredUsers.length} users)). `
          : `every call by the one bench user, the admin, in one conversation). `) +
        `p50 ${fmt(x.loaded.latencyMs.p50)} ms, p99 ${fmt(x.loaded.latencyMs.p99)} ms at ${c} connections; ${fmt(x.single.latencyMs.p50, 2)} ms at 1 connection; ` +
        `${Number.isInteger(x.sqlPerRequest) ? x.sqlPerRequest : fmt(x.sqlPerRequest, 2)} SQL statements and ${fmt(x.nodeCpuMsPerRequest, 2)} ms of Node CPU per call; ${x.failures} failed.`,
    );

  const goals = r.results
    .filter((x) => x.scenario.goal)
    .map((x) => {
      const g = x.scenario.goal!;
      const p50 = x.single.latencyMs.p50;
      return `- \`${x.scenario.name}\` (${g.issue}): p50 at 1 connection ≤ ${g.singleP50Ms} ms: ${fmt(p50, 1)} ms — ${p50 <= g.singleP50Ms ? 'met' : '**not met**'}`;
    });

  const cpu = cpus();
  const s = r.settings;
  const data = Object.entries(r.fixture.rows)
    .map(([t, n]) => `${n.toLocaleString('en-US')} ${t}`)
    .join(', ');
  return [
    '# Steward benchmark',
    '',
    table,
    ...headlines.flatMap((h) => ['', h]),
    ...(goals.length ? ['', 'Latency goals (reported, never failed):', '', ...goals] : []),
    ...(scalingTable ? [scalingTable] : []),
    ...comparisons.flatMap((x) => ['', x]),
    '',
    `- Run ${r.startedAt.toISOString()}, ${fmt(r.seconds, 0)} s in all. Node ${process.version}, ${cpu.length} × ${cpu[0]?.model.trim() ?? 'CPU'}, ` +
      `${(totalmem() / 2 ** 30).toFixed(1)} GiB; ${r.postgresVersion} (embedded, fsync off) on the same machine.`,
    `- Data: ${data} (filled by SQL in ${(r.fixture.ms / 1000).toFixed(1)} s, the prompt logs ${(r.fixture.promptLogMs / 1000).toFixed(1)} s of it). ` +
      `Every request to Steward is signed by the admin's access token` +
      (r.results.some((x) => x.scenario.perConnection)
        ? `, except under load in ${r.results
            .filter((x) => x.scenario.perConnection)
            .map((x) => `\`${x.scenario.name}\``)
            .join(', ')}: each connection its own user's (signed up through the API).`
        : '.'),
    `- Load: autocannon in a child process, POST /graphql over HTTP keep-alive; ${s.warmup} s warm-up at ${c} connections, ` +
      `then ${s.duration} s at ${c} connections and ${s.singleDuration} s at 1 connection. Latencies are per request, nearest-rank percentiles.`,
    `- SQL/req: statements PostgreSQL ran (pg_stat_statements, BEGIN/COMMIT included, authentication included) over ${s.sqlSamples} sequential requests, divided by ${s.sqlSamples}.`,
    `- Node CPU ms/req: Steward's process (user + system, GC included) from the start of the ${c}-connection run until the requests it left in flight were done, ` +
      `÷ requests it sent (answered, plus those in flight when it stopped); the load generator is another process. ` +
      `PG CPU ms/req: PostgreSQL's processes (/proc) over the same span ÷ the same requests. ` +
      `PG exec ms/req: PostgreSQL's execution time of those requests (pg_stat_statements total_exec_time; excludes parse, plan and network). ` +
      `Every run starts once Steward and PostgreSQL are idle again after the previous one.`,
    `- busy elsewhere: share of the machine's ${cpu.length} cores busy during the ${c}-connection run with anything but Steward, PostgreSQL and the load generator ` +
      `(other programs; kernel time not charged to a process, such as loopback networking). A few percent is normal; more means other work disturbed the figures.`,
    ...(scaled.length
      ? [
          `- size: rows per level of the query (\`first\` of each connection). SQL/req and ms/req there: ${s.sqlSamples} sequential requests after one unmeasured one, ` +
            `as for SQL/req above. rows in the answer: objects per field, connections folded into their field.`,
        ]
      : []),
    ...comparisonNotes(r),
    `- failed: errors, timeouts, non-2xx answers and answers that differ from the probed one (for writes, whose answers differ by design: answers with errors), over all runs; the bench fails unless 0.`,
    '',
  ].join('\n');
}

/** The notes of the comparison rows: what each contender is, and how its figures differ in meaning. */
function comparisonNotes(r: ReportInput): string[] {
  return (r.comparisons ?? []).flatMap((c) => [
    `- \`${c.scenario.name} — …\` rows: the same answer from another server on the same database, each a child process started by the bench after Steward's \`${c.scenario.name}\` ` +
      `(and stopped once measured), measured by the same harness with the same settings. Node CPU ms/req there is that process's CPU (/proc/<pid>/stat, user + system), ` +
      `not Steward's; SQL/req counts its statements the same way (Steward's include its authentication, theirs have none to do); ` +
      `Steward's process is idle meanwhile and counts as busy elsewhere.`,
    ...c.contenders.map((x) => `- \`${x.result.scenario.name}\`: ${x.contender.note}`),
  ]);
}
