/**
 * Audited writes per second with 16 writers (issue 5), run by `npm run bench` after the
 * read scenarios (./run.ts) and appended to its report.
 *
 * Each writer is a user of its own (so no two writers wait on the same row) sending
 * `updateMe` over HTTP back to back: every write commits its change and its audit event
 * in one transaction, and the sealer links the events into the hash chain after the
 * commits. The writers run in a child process (this file, forked) so their CPU never
 * counts as Steward's. While they write, the unlinked backlog is sampled; afterwards
 * the time until everything is linked, and verifyAuditChain over the whole chain.
 *
 * Settings (environment):
 *   BENCH_AUDIT_WRITERS   concurrent writers (default 16)
 *   BENCH_AUDIT_SECONDS   seconds of writing (default 10)
 *   BENCH_AUDIT           0 to skip it
 */
import { fork } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

import { cpuDelta, cpuSnapshot } from './cpu.js';
import { graphql } from './http.js';

const UPDATE_ME = 'mutation W($input: UpdateMeInput!) { updateMe(input: $input) { id } }';

interface LoadSpec {
  url: string;
  tokens: string[];
  seconds: number;
}
interface LoadResult {
  writes: number;
  failures: number;
  firstFailure?: string;
  seconds: number;
  latencyMs: { p50: number; p99: number };
  /** CPU the writers' process used, ms. */
  cpuMs: number;
}

export interface AuditBenchResult extends LoadResult {
  writers: number;
  writesPerSecond: number;
  maxBacklog: number;
  /** Share of the machine's cores busy with anything but Steward, PostgreSQL and the writers during the run. */
  elsewhereShare: number;
  /** From the end of the writing to the last event linked. */
  drainMs: number;
  chain: { ok: boolean; checked: number; added: number; verifyMs: number; reason: string | null };
}

/** The writers: `tokens.length` loops of updateMe for `seconds` (runs in the child). */
async function write(spec: LoadSpec): Promise<LoadResult> {
  const latencies: number[] = [];
  let failures = 0;
  let firstFailure: string | undefined;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const deadline = started + spec.seconds * 1000;
  await Promise.all(
    spec.tokens.map(async (token, w) => {
      for (let n = 0; performance.now() < deadline; n++) {
        const t = performance.now();
        const res = await fetch(spec.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ query: UPDATE_ME, variables: { input: { name: `writer ${w} write ${n}` } } }),
        });
        const body = await res.text();
        if (res.status !== 200 || body.includes('"errors"')) {
          failures++;
          firstFailure ??= body.slice(0, 500);
        } else latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.max(0, Math.ceil(q * latencies.length) - 1))] ?? NaN;
  const cpu = process.cpuUsage(cpuBefore);
  return {
    writes: latencies.length,
    failures,
    firstFailure,
    seconds,
    latencyMs: { p50: at(0.5), p99: at(0.99) },
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

function runWriters(spec: LoadSpec): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), ['--audit-writers'], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.once('message', (m) => resolve(m as LoadResult));
    child.once('error', reject);
    child.once('exit', (code) => (code ? reject(new Error(`audit writers exited with ${code}`)) : undefined));
    child.send(spec);
  });
}

const VERIFY = 'query { verifyAuditChain { ok checked headSeq reason } }';
type Verification = { verifyAuditChain: { ok: boolean; checked: number; headSeq: number; reason: string | null } };

export async function measureAuditedWrites(ctx: {
  graphqlUrl: string;
  dbUrl: string;
  adminToken: string;
  writers: number;
  seconds: number;
  postgresPid?: number;
  log: (m: string) => void;
}): Promise<AuditBenchResult> {
  const { graphqlUrl, adminToken } = ctx;
  const inv = await graphql<{ createInvitation: { code: string } }>(
    graphqlUrl,
    'mutation I($input: CreateInvitationInput!) { createInvitation(input: $input) { code } }',
    { input: { role: 'USER', maxUses: ctx.writers, expiresAt: new Date(Date.now() + 3600_000).toISOString() } },
    adminToken,
  );
  const tokens: string[] = [];
  for (let i = 0; i < ctx.writers; i++) {
    const username = `audit_writer_${i}_${Date.now().toString(36)}`;
    const r = await graphql<{ signUp: { accessToken: string } }>(
      graphqlUrl,
      'mutation S($input: SignUpInput!) { signUp(input: $input) { accessToken } }',
      {
        input: {
          email: `${username}@bench.test`,
          username,
          password: 'bench-password-0123',
          invitationCode: inv.createInvitation.code,
        },
      },
    );
    tokens.push(r.signUp.accessToken);
  }
  const before = (await graphql<Verification>(graphqlUrl, VERIFY, undefined, adminToken)).verifyAuditChain;

  const pool = new pg.Pool({ connectionString: ctx.dbUrl, max: 1 });
  const backlog = () =>
    pool
      .query<{ n: number }>('SELECT count(*)::int AS n FROM audit_events WHERE hash IS NULL')
      .then((r) => r.rows[0]!.n);
  let maxBacklog = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      maxBacklog = Math.max(maxBacklog, await backlog());
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  ctx.log(`  ${ctx.writers} writers for ${ctx.seconds} s`);
  let load: LoadResult;
  const machineBefore = cpuSnapshot(ctx.postgresPid);
  const stewardBefore = process.cpuUsage();
  const wallStarted = performance.now();
  try {
    load = await runWriters({ url: graphqlUrl, tokens, seconds: ctx.seconds });
  } finally {
    sampling = false;
    await sampler;
  }
  const machine = cpuDelta(machineBefore, cpuSnapshot(ctx.postgresPid));
  const steward = process.cpuUsage(stewardBefore);
  const elsewhereShare =
    (machine.machineMs - (steward.user + steward.system) / 1000 - load.cpuMs - machine.postgresMs) /
    ((performance.now() - wallStarted) * cpus().length);
  const ended = Date.now();
  try {
    while ((await backlog()) > 0 && Date.now() - ended < 30_000) await new Promise((r) => setTimeout(r, 5));
  } finally {
    await pool.end();
  }
  const drainMs = Date.now() - ended;
  const t = performance.now();
  const after = (await graphql<Verification>(graphqlUrl, VERIFY, undefined, adminToken)).verifyAuditChain;
  const verifyMs = performance.now() - t;
  return {
    ...load,
    writers: ctx.writers,
    writesPerSecond: load.writes / load.seconds,
    maxBacklog,
    elsewhereShare,
    drainMs,
    chain: {
      ok: after.ok,
      checked: after.checked,
      added: after.headSeq - before.headSeq,
      verifyMs,
      reason: after.reason,
    },
  };
}

export function renderAuditReport(r: AuditBenchResult): string {
  return [
    `## Audited writes (bench/audit.ts)`,
    ``,
    `${r.writers} writers, each a user of its own, sending \`updateMe\` over HTTP back to back for ${r.seconds.toFixed(1)} s. Every write commits its change and its audit event in one transaction; the sealer links the events into the one hash chain after the commits.`,
    ``,
    `| writers | audited writes/s | p50 ms | p99 ms | failed | largest unlinked backlog | all linked after | links added | chain verified | verify ms | busy elsewhere |`,
    `|---:|---:|---:|---:|---:|---:|---:|---:|:--|---:|---:|`,
    `| ${r.writers} | ${Math.round(r.writesPerSecond)} | ${r.latencyMs.p50.toFixed(1)} | ${r.latencyMs.p99.toFixed(1)} | ${r.failures} | ${r.maxBacklog} | ${r.drainMs} ms | ${r.chain.added} | ${r.chain.ok ? `ok (${r.chain.checked} links)` : `BROKEN: ${r.chain.reason}`} | ${r.chain.verifyMs.toFixed(0)} | ${Number.isFinite(r.elsewhereShare) ? `${Math.round(Math.max(0, r.elsewhereShare) * 100)}%` : '—'} |`,
    ``,
    `- largest unlinked backlog: audit events committed but not yet in the chain, sampled every 100 ms during the run; all linked after: from the end of the writing until none is left.`,
    `- busy elsewhere: share of the machine's cores busy with anything but Steward, PostgreSQL and the writers during the run; more than a few percent means other work disturbed the figures.`,
    ``,
  ].join('\n');
}

/**
 * The run.ts hook: measures, prints, appends to the report file, and returns the
 * problems that must fail the bench (failed writes, a chain that does not verify or
 * does not hold exactly the writes).
 */
export async function auditBench(ctx: {
  graphqlUrl: string;
  dbUrl: string;
  adminToken: string;
  only: string[] | null;
  reportFile: string;
  postgresPid?: number;
  log: (m: string) => void;
}): Promise<string[]> {
  if (process.env.BENCH_AUDIT === '0' || (ctx.only && !ctx.only.includes('audit'))) return [];
  const positive = (name: string, def: number) => {
    const v = Number(process.env[name] || def);
    if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`);
    return v;
  };
  ctx.log('audited writes');
  const r = await measureAuditedWrites({
    ...ctx,
    writers: positive('BENCH_AUDIT_WRITERS', 16),
    seconds: positive('BENCH_AUDIT_SECONDS', 10),
  });
  ctx.log(
    `  ${Math.round(r.writesPerSecond)} audited writes/s with ${r.writers} writers; p99 ${r.latencyMs.p99.toFixed(1)} ms; backlog ≤ ${r.maxBacklog}; linked ${r.drainMs} ms after; chain ${r.chain.ok ? 'ok' : 'BROKEN'}; busy elsewhere ${Math.round(r.elsewhereShare * 100)}%`,
  );
  const report = renderAuditReport(r);
  process.stdout.write(`\n${report}\n`);
  appendFileSync(ctx.reportFile, `\n${report}`);
  const problems: string[] = [];
  if (r.failures) problems.push(`audited writes: ${r.failures} failed, e.g. ${r.firstFailure}`);
  if (!r.chain.ok) problems.push(`audited writes: the chain does not verify: ${r.chain.reason}`);
  if (r.chain.added !== r.writes) problems.push(`audited writes: ${r.writes} writes but ${r.chain.added} links added`);
  return problems;
}

if (process.argv.includes('--audit-writers')) {
  process.once('message', async (spec) => {
    const result = await write(spec as LoadSpec);
    process.send!(result, () => process.exit(0));
  });
}
