import type { Fixture, ViewerKey } from './fixture.js';

/**
 * One measured GraphQL operation. Adding a benchmark is adding an entry to `scenarios`
 * (and, if it needs data or a viewer the fixture lacks, a fill step or a token in
 * ./fixture.ts); the runner measures every entry the same way and the report gets a row.
 */
export interface Scenario {
  /** Row label in the table; also what BENCH_ONLY matches. */
  name: string;
  /** The GraphQL document, sent as-is in a POST body. */
  query: string;
  /** The variables, or a function of the fixture for ids it created (e.g. a conversation). */
  variables?: Record<string, unknown> | ((fixture: Fixture) => Record<string, unknown>);
  /**
   * What one request is, for the report's headline figures (e.g. 'metered AI calls'):
   * the scenario's req/s are then also printed as "<unit>/s" under the table.
   */
  unit?: string;
  /**
   * Requests of the same shape for other viewers: under load, connection i sends
   * perConnection(fixture)[i mod length] instead (e.g. each connection a user of its own);
   * the probe, SQL/req and the single-client run use the first. `as` and `variables` are
   * then unused.
   */
  perConnection?: (fixture: Fixture) => { token: string; variables: Record<string, unknown> }[];
  /** Whose access token signs the requests; null sends none. */
  as: ViewerKey | null;
  /**
   * How every response under load is checked (any failure fails the bench):
   * 'same-body' (default): byte-for-byte equal to the first, probed answer — for reads
   * of data that does not change during the run;
   * 'no-errors': HTTP 200 with `data` and no `errors` — for answers that vary.
   */
  check?: 'same-body' | 'no-errors';
  /**
   * The same query shape at other sizes. The bench counts each one's SQL statements per
   * request (as for SQL/req) and fails unless they are all equal: statements may grow
   * with the depth of a query, never with its rows. Reported in a table of their own.
   */
  sqlScaling?: { label: string; query: string; variables?: Record<string, unknown> }[];
  /** A latency goal of the issue that asked for the scenario: one client's median (reported, never failed). */
  goal?: { singleP50Ms: number; issue: string };
}

/** Issue 3's dashboard: the first `projects` projects, the first `tasks` tasks of each, their assignees and approvals' requesters. */
const dashboard = (projects: number, tasks: number) =>
  `{ projects(first: ${projects}) { edges { node { tasks(first: ${tasks}) { edges { node { assignees { id } approvals { requestedBy { id } } } } } } } } }`;

/** The variables of a scenario for this fixture. */
export const variablesOf = (v: Scenario['variables'], fixture: Fixture) => (typeof v === 'function' ? v(fixture) : v);

/**
 * Issue 4's metered AI call: the admin's message in a conversation with the ASSISTANT,
 * answered by the built-in LOCAL provider ("Steward Local", steward-local-1). Every call
 * runs the whole metered pipeline (metering.service.ts): user check, governance,
 * quota reservation, the provider call (streamed, one NOTIFY per chunk round trip),
 * settlement with PromptLog, CostRecord, daily and monthly usage, both messages and an
 * audit event. The fixture starts the conversation and lifts the admin's quotas.
 */
const SEND_MESSAGE =
  'mutation M($input: SendMessageInput!) { sendMessage(input: $input) { id content promptTokens completionTokens model } }';
const USAGE_REPORT =
  'query U($from: DateTime!) { usageReport(groupBy: [DAY, MODEL], where: { from: $from }) { rows { day model requests inputTokens outputTokens costUsd blocked errors } totals { requests costUsd blocked errors } } }';
export const METERED_PROMPT = 'Summarise the open work of this week in three short bullet points for the team.';

export const scenarios: Scenario[] = [
  {
    name: 'me',
    query: '{ me { id username role } }',
    as: 'admin',
  },
  {
    name: 'users(first: 50)',
    query: '{ users(first: 50) { totalCount edges { node { id email username role } } } }',
    as: 'admin',
  },
  {
    // The admin sees every project. Compared with PostGraphile and a hand-written floor
    // right after it (./compare.ts: `comparisons`), unless BENCH_COMPARE=0.
    name: 'dashboard',
    query: dashboard(20, 20),
    as: 'admin',
    sqlScaling: [
      { label: '10 per level', query: dashboard(10, 10) },
      { label: '100 per level', query: dashboard(100, 100) },
    ],
  },
  {
    // Issue 14's report: the last 30 days of the 1,000,000 prompt logs (about half of them)
    // as spend per UTC day and model, for an admin (no visibility filter to lean on). Before
    // the metered calls, which add logs: the answer stays the same during the run. Alone:
    // BENCH_ONLY='usage report' (see README, Performance).
    name: 'usage report',
    query: USAGE_REPORT,
    variables: () => ({ from: new Date(Date.now() - 30 * 86400_000).toISOString() }),
    as: 'admin',
    goal: {
      singleP50Ms: 500,
      issue: 'usage reports: a 30-day DAY × MODEL report over 1,000,000 prompt logs answers in well under a second',
    },
  },
  {
    // Writes: every answer differs (ids, history), so only errors count as failures.
    name: 'metered AI call',
    query: SEND_MESSAGE,
    variables: (f) => ({ input: { conversationId: f.conversationId, content: METERED_PROMPT } }),
    as: 'admin',
    check: 'no-errors',
    unit: 'metered AI calls',
  },
  {
    // The same call by many users at once: each connection a user of its own, with its own
    // conversation and quotas, so no two concurrent calls share a user's usage counters.
    name: 'metered AI call (user per conn)',
    query: SEND_MESSAGE,
    as: null,
    perConnection: (f) =>
      f.meteredUsers.map((u) => ({
        token: u.token,
        variables: { input: { conversationId: u.conversationId, content: METERED_PROMPT } },
      })),
    check: 'no-errors',
    unit: 'metered AI calls',
  },
];
