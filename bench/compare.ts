/**
 * The dashboard against other servers of the same data (the performance issue): PostGraphile
 * 5 (./postgraphile.ts) and a hand-written floor (./floor.ts), each started by the bench as
 * a child process on the same database, right after Steward's own `dashboard` measurement,
 * and measured by the same harness (./measure.ts: same autocannon settings, warm-up, SQL
 * statements from pg_stat_statements, PostgreSQL's CPU and execution time) with their own
 * process's CPU as Node CPU (/proc/<pid>/stat). Each is stopped once measured.
 *
 * Their answers must be Steward's: before measuring, the bench asks each server, Steward
 * included, for the dashboard with every project's and task's id and compares, level by
 * level and in order, the projects, their tasks, each task's assignees and each approval's
 * requester; then it compares the measured answers the same way (they carry no project or
 * task ids). Any difference fails the bench. The speed goals are only reported.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import { startChildServer, type ChildServer } from './child-server.js';
import { processCpuMs } from './cpu.js';
import { graphqlRequest, isGoodBody, send } from './http.js';
import { BenchFailure, measureScenario, type MeasureContext, type ScenarioResult } from './measure.js';
import type { Scenario } from './scenarios.js';

/** A dashboard answer reduced to its rows, in answer order: what must be equal between servers. */
export interface DashboardRows {
  /** `id` only in the probes' answers. */
  projects: { id?: string; tasks: { id?: string; assignees: (string | null)[]; requesters: (string | null)[] }[] }[];
}

/** Another server answering the scenario, measured next to it. */
export interface Contender {
  /** Its name in the report; its row in the table is `<scenario> — <name>`. */
  name: string;
  /** Its name in the ratios' headers ("Steward ÷ floor"). */
  short: string;
  /** A goal of the issue: Steward's req/s at least this server's. */
  rival?: boolean;
  /** Its child process's entry, a module next to this one. */
  entry: string;
  /** The measured request's GraphQL document; by default the scenario's own (the floor's: it reads the body and ignores it). */
  query?: string;
  /** The equivalence probe: where to send it, and the query with project and task ids (by default Steward's probe query). */
  probe: { path: string; query?: string };
  rows(body: string): DashboardRows;
  /** How it answers, for the report's notes. */
  note: string;
}

export interface Comparison {
  /**
   * Levels of objects in the scenario's query (connections' edges and nodes are not
   * levels): the goal is at most depth + 1 SQL statements per request (one per level, and
   * one to authenticate).
   */
  depth: number;
  /** The levels, named, for the report. */
  levels: string[];
  /** Steward's query with project and task ids (the equivalence probe). */
  probeQuery: string;
  /** Reduces Steward's answers (the scenario's and the probe's). */
  rows(body: string): DashboardRows;
  /** The goal for Steward's Node CPU, ms per request. */
  maxNodeCpuMsPerRequest: number;
  contenders(): Contender[];
}

export interface Equivalence {
  equal: boolean;
  /** What was compared, e.g. "20 projects, 400 tasks, 583 assignees, 800 requesters". */
  compared: string;
  /** The first difference, when not equal. */
  difference?: string;
}

export interface ContenderResult {
  contender: Contender;
  result: ScenarioResult;
  equivalence: Equivalence;
}

export interface ComparisonResult {
  scenario: Scenario;
  comparison: Comparison;
  steward: ScenarioResult;
  contenders: ContenderResult[];
}

// ---------- the dashboard ----------

// Parsed answers, loosely typed: a shape that differs fails the comparison (or throws, which fails the bench too).
type Json = Record<string, any>;

const dataOf = (body: string): Json => (JSON.parse(body) as { data: Json }).data;

/** Steward's answer: projects.edges[].node.tasks.edges[].node { assignees[] { id }, approvals[] { requestedBy { id } } }. */
const stewardRows = (body: string): DashboardRows => ({
  projects: dataOf(body).projects.edges.map((p: Json) => ({
    id: p.node.id,
    tasks: p.node.tasks.edges.map((t: Json) => ({
      id: t.node.id,
      assignees: t.node.assignees.map((a: Json) => a?.id ?? null),
      requesters: t.node.approvals.map((a: Json) => a.requestedBy?.id ?? null),
    })),
  })),
});

/** PostGraphile's answer, in its naming: `rowId` is the primary key (amber's `id` is the global node id). */
const postgraphileRows = (body: string): DashboardRows => ({
  projects: dataOf(body).allProjects.edges.map((p: Json) => ({
    id: p.node.rowId,
    tasks: p.node.tasksByProjectId.edges.map((t: Json) => ({
      id: t.node.rowId,
      assignees: t.node.taskAssigneesByTaskId.nodes.map((a: Json) => a.userByUserId?.rowId ?? null),
      requesters: t.node.approvalsByTaskId.nodes.map((a: Json) => a.userByRequestedById?.rowId ?? null),
    })),
  })),
});

/**
 * Steward's dashboard in PostGraphile's schema, with Steward's rows and orders (see
 * src/modules/projects/project.service.ts `list`, src/modules/work/task.resolver.ts):
 * - projects newest first (ROW_ID_DESC: UUIDv7 ids) and not DELETED: Steward lists ACTIVE
 *   and ARCHIVED; amber's `condition` is equality only, so `status: ACTIVE` (every bench
 *   project is ACTIVE: the same rows, which the equivalence check verifies);
 * - tasks newest first (ROW_ID_DESC), Steward's default order (CREATED_AT DESC, by id);
 * - assignees: the active assignments, by user id, through the join table (no
 *   many-to-many plugin), then each one's user;
 * - approvals oldest first (ROW_ID_ASC), then each one's requester.
 * Connections where Steward has connections (edges/node), `nodes` where it has lists.
 */
const pglDashboard = (withIds: boolean) => {
  const id = withIds ? 'rowId ' : '';
  return (
    `{ allProjects(first: 20, orderBy: ROW_ID_DESC, condition: { status: ACTIVE }) { edges { node { ${id}` +
    `tasksByProjectId(first: 20, orderBy: ROW_ID_DESC) { edges { node { ${id}` +
    `taskAssigneesByTaskId(condition: { active: true }, orderBy: USER_ID_ASC) { nodes { userByUserId { rowId } } } ` +
    `approvalsByTaskId(orderBy: ROW_ID_ASC) { nodes { userByRequestedById { rowId } } } } } } } } } }`
  );
};

/** The installed version of an npm package (its package.json is not in its exports map). */
function versionOf(pkg: string): string {
  let dir = dirname(createRequire(import.meta.url).resolve(pkg));
  for (;;) {
    try {
      const json = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version: string };
      if (json.name === pkg) return json.version;
    } catch {
      /* not here: look higher */
    }
    const up = dirname(dir);
    if (up === dir) return '?';
    dir = up;
  }
}

/** The `dashboard` scenario's comparison (the query is `dashboard(20, 20)` of ./scenarios.ts). */
export const dashboardComparison: Comparison = {
  depth: 5,
  levels: ['projects', 'tasks', 'assignees', 'approvals', 'requestedBy'],
  probeQuery: `{ projects(first: 20) { edges { node { id tasks(first: 20) { edges { node { id assignees { id } approvals { requestedBy { id } } } } } } } } }`,
  rows: stewardRows,
  maxNodeCpuMsPerRequest: 25,
  contenders: () => [
    {
      name: `PostGraphile ${versionOf('postgraphile')}`,
      short: 'PostGraphile',
      rival: true,
      entry: './postgraphile.js',
      query: pglDashboard(false),
      probe: { path: '/graphql', query: pglDashboard(true) },
      rows: postgraphileRows,
      note:
        `amber preset, one pg service over \`public\` (makePgService, Steward's pool size), grafserv's node adapter on node:http; no plugins, no smart tags; ` +
        `connects as the bench's superuser (no RLS, no role switching, no authentication). Query: \`${pglDashboard(false)}\`.`,
    },
    {
      name: 'floor (node http + pg + SQL)',
      short: 'floor',
      entry: './floor.js',
      probe: { path: '/probe' },
      rows: stewardRows,
      note:
        `node:http and a pg Pool (Steward's pool size), one prepared statement per request in which PostgreSQL builds the whole answer ` +
        `as text, in the shape of Steward's; sent Steward's request, it reads the POST body and ignores it; no GraphQL, no authentication (see bench/floor.ts).`,
    },
  ],
};

/** The comparisons by scenario name: each runs right after its scenario (unless BENCH_COMPARE=0). */
export const comparisons: Record<string, Comparison> = { dashboard: dashboardComparison };

// ---------- equivalence ----------

function countOf(rows: DashboardRows): string {
  const tasks = rows.projects.flatMap((p) => p.tasks);
  const n = (v: number) => v.toLocaleString('en-US');
  return (
    `${n(rows.projects.length)} projects, ${n(tasks.length)} tasks, ${n(tasks.reduce((s, t) => s + t.assignees.length, 0))} assignees, ` +
    `${n(tasks.reduce((s, t) => s + t.requesters.length, 0))} requesters`
  );
}

/** Where two reductions first differ, in words; undefined when equal. */
function firstDifference(expected: DashboardRows, actual: DashboardRows): string | undefined {
  const a = expected.projects;
  const b = actual.projects;
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const p = a[i];
    const q = b[i];
    if (!p || !q) return `${a.length} projects in Steward's answer, ${b.length} in the other`;
    if (p.id !== q.id) return `project #${i + 1}: ${p.id} in Steward's answer, ${q.id} in the other`;
    for (let j = 0; j < Math.max(p.tasks.length, q.tasks.length); j++) {
      const t = p.tasks[j];
      const u = q.tasks[j];
      const where = `project #${i + 1}${p.id ? ` (${p.id})` : ''}, task #${j + 1}`;
      if (!t || !u)
        return `project #${i + 1}: ${p.tasks.length} tasks in Steward's answer, ${q.tasks.length} in the other`;
      if (t.id !== u.id) return `${where}: ${t.id} in Steward's answer, ${u.id} in the other`;
      for (const k of ['assignees', 'requesters'] as const) {
        if (JSON.stringify(t[k]) !== JSON.stringify(u[k]))
          return `${where}${t.id ? ` (${t.id})` : ''}, ${k}: ${JSON.stringify(t[k])} in Steward's answer, ${JSON.stringify(u[k])} in the other`;
      }
    }
  }
  return undefined;
}

/** One answer, reduced by `rows`; a failed request or an answer of another shape fails the bench. */
async function rowsOf(
  label: string,
  url: string,
  query: string,
  token: string | null,
  rows: (body: string) => DashboardRows,
): Promise<DashboardRows> {
  const r = await send(graphqlRequest(url, query, undefined, token));
  if (r.status !== 200 || !isGoodBody(r.body))
    throw new BenchFailure(`${label}: the request failed (HTTP ${r.status}): ${r.body.slice(0, 1000)}`);
  try {
    return rows(r.body);
  } catch (err) {
    throw new BenchFailure(`${label}: not the dashboard's shape (${(err as Error).message}): ${r.body.slice(0, 1000)}`);
  }
}

/**
 * Steward's and the contender's answers, reduced and compared: first the probes (with
 * project and task ids), then the measured requests' answers.
 */
async function checkEquivalence(
  scenario: Scenario,
  comparison: Comparison,
  contender: Contender,
  server: ChildServer,
  stewardUrl: string,
  token: string | null,
): Promise<Equivalence> {
  const label = `${scenario.name} — ${contender.name}`;
  const query = contender.query ?? scenario.query;
  const pairs: [string, DashboardRows, DashboardRows][] = [
    [
      'with project and task ids',
      await rowsOf(`${scenario.name} (probe with ids)`, stewardUrl, comparison.probeQuery, token, comparison.rows),
      await rowsOf(
        `${label} (probe with ids)`,
        server.url + contender.probe.path,
        contender.probe.query ?? comparison.probeQuery,
        null,
        contender.rows,
      ),
    ],
    [
      'the measured answers',
      await rowsOf(scenario.name, stewardUrl, scenario.query, token, comparison.rows),
      await rowsOf(label, `${server.url}/graphql`, query, null, contender.rows),
    ],
  ];
  for (const [what, expected, actual] of pairs) {
    const difference = firstDifference(expected, actual);
    if (difference) return { equal: false, compared: countOf(expected), difference: `${what}: ${difference}` };
  }
  return { equal: true, compared: countOf(pairs[0]![1]) };
}

/**
 * Each contender of `comparison` in turn: started, checked equivalent, measured as the
 * scenario was, stopped.
 */
export async function runComparison(
  scenario: Scenario,
  comparison: Comparison,
  steward: ScenarioResult,
  ctx: MeasureContext & { poolSize: number; log: (msg: string) => void; measured: (r: ScenarioResult) => void },
): Promise<ComparisonResult> {
  const token = scenario.as === null ? null : ctx.fixture.tokens[scenario.as];
  const contenders: ContenderResult[] = [];
  for (const contender of comparison.contenders()) {
    const started = performance.now();
    const server = await startChildServer(contender.entry, { dbUrl: ctx.db.url, poolSize: ctx.poolSize }).catch(
      (err: Error) => {
        throw new BenchFailure(`${contender.name} did not start: ${err.message}`);
      },
    );
    try {
      ctx.log(`  ${contender.name}: serving in ${Math.round(performance.now() - started)} ms (pid ${server.pid})`);
      const equivalence = await checkEquivalence(scenario, comparison, contender, server, ctx.graphqlUrl, token);
      ctx.log(
        equivalence.equal
          ? `  same answers as Steward (${equivalence.compared})`
          : `  ERROR: not Steward's answer: ${equivalence.difference}`,
      );
      const result = await measureScenario(
        { name: `${scenario.name} — ${contender.name}`, query: contender.query ?? scenario.query, as: null },
        { ...ctx, graphqlUrl: `${server.url}/graphql`, serverCpuMs: () => processCpuMs(server.pid) },
      );
      ctx.measured(result);
      contenders.push({ contender, result, equivalence });
    } finally {
      await server.stop();
    }
  }
  return { scenario, comparison, steward, contenders };
}
