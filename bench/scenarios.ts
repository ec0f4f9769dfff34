import type { ViewerKey } from './fixture.js';

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
  variables?: Record<string, unknown>;
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
}

/** Issue 3's dashboard: the first `projects` projects, the first `tasks` tasks of each, their assignees and approvals' requesters. */
const dashboard = (projects: number, tasks: number) =>
  `{ projects(first: ${projects}) { edges { node { tasks(first: ${tasks}) { edges { node { assignees { id } approvals { requestedBy { id } } } } } } } } }`;

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
    // The admin sees every project.
    name: 'dashboard',
    query: dashboard(20, 20),
    as: 'admin',
    sqlScaling: [
      { label: '10 per level', query: dashboard(10, 10) },
      { label: '100 per level', query: dashboard(100, 100) },
    ],
  },
];
