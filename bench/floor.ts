/**
 * The floor of the dashboard comparison (./compare.ts): what answering the dashboard costs
 * with nothing in between, run by the bench as a child process (./child-server.ts). A plain
 * node:http server and a pg Pool (Steward's pool size) run ONE prepared statement per
 * request, in which PostgreSQL builds the whole answer as text; Node only reads the POST
 * body (and ignores it) and writes that text back. No GraphQL, no authentication, no
 * validation, no objects in Node at all.
 *
 * The answer is byte for byte the shape of Steward's answer to the dashboard query,
 * `{"data":{"projects":{"edges":[{"node":{"tasks":{"edges":[{"node":{"assignees":[{"id":…}],
 * "approvals":[{"requestedBy":{"id":…}}]}}]}}}]}}}`, with Steward's rows and orders:
 * - projects: not DELETED (ACTIVE or ARCHIVED), newest first (id descending: UUIDv7),
 *   the first FLOOR_PROJECTS;
 * - tasks of each: newest first (id descending), the first FLOOR_TASKS;
 * - assignees: the active assignments, by user id; their ids are task_assignees.user_id,
 *   which its foreign key makes an existing user's id (so no join to users);
 * - approvals: oldest first (id ascending); requestedBy: null when requested_by_id is (a
 *   system actor asked), else that id (foreign key to users likewise).
 * Ids are UUIDs, which need no JSON escaping, so the text is built by concatenation.
 *
 * Built by PostgreSQL rather than in Node, because that measured faster: on the 2-core
 * bench machine (busy with other work, so only roughly), 0.5 ms of Node CPU and 3.8 ms of
 * PostgreSQL CPU per request and ~310 req/s at 32 connections, against 2.5 ms and 4.1 ms
 * and ~175 req/s when Node assembled the same text from one row per task (its assignees'
 * and requesters' ids as arrays): PostgreSQL spends about as much encoding those arrays as
 * concatenating the answer, and Node then parses them.
 *
 * POST /probe answers the same with each project's and task's id (`"id"` first in their
 * node): the bench's equivalence check compares those ids with Steward's and PostGraphile's.
 */
import { createServer } from 'node:http';
import pg from 'pg';

import { serveInChild } from './child-server.js';

/** The dashboard's sizes: Steward's `projects(first: 20) { … tasks(first: 20) … }`. */
const FLOOR_PROJECTS = 20;
const FLOOR_TASKS = 20;

/** The statement; `withIds` adds the project and task ids (the probe). $1 projects, $2 tasks per project. */
export function floorSql(withIds: boolean): string {
  const id = (col: string) => (withIds ? `'"id":"' || ${col} || '",' || ` : '');
  return `
SELECT '{"data":{"projects":{"edges":[' || coalesce(string_agg(p.node, ',' ORDER BY p.id DESC), '') || E']}}}\n' AS body
  FROM (
    SELECT p.id,
           '{"node":{' || ${id('p.id')}'"tasks":{"edges":[' || coalesce((
             SELECT string_agg(
                      '{"node":{' || ${id('t.id')}'"assignees":[' || coalesce((
                        SELECT string_agg('{"id":"' || a.user_id || '"}', ',' ORDER BY a.user_id)
                          FROM task_assignees a WHERE a.task_id = t.id AND a.active), '') ||
                      '],"approvals":[' || coalesce((
                        SELECT string_agg(CASE WHEN ap.requested_by_id IS NULL THEN '{"requestedBy":null}'
                                               ELSE '{"requestedBy":{"id":"' || ap.requested_by_id || '"}}' END, ',' ORDER BY ap.id)
                          FROM approvals ap WHERE ap.task_id = t.id), '') || ']}}',
                      ',' ORDER BY t.id DESC)
               FROM (SELECT id FROM tasks WHERE project_id = p.id ORDER BY id DESC LIMIT $2) t), '') || ']}}}' AS node
      FROM projects p
     WHERE p.status IN ('ACTIVE', 'ARCHIVED')
     ORDER BY p.id DESC
     LIMIT $1) p`;
}

serveInChild(async ({ dbUrl, poolSize }) => {
  const pool = new pg.Pool({ connectionString: dbUrl, max: poolSize });
  // Named: prepared once per connection, then only bound and executed.
  const statements = {
    '/graphql': { name: 'floor_dashboard', text: floorSql(false), values: [FLOOR_PROJECTS, FLOOR_TASKS] },
    '/probe': { name: 'floor_dashboard_probe', text: floorSql(true), values: [FLOOR_PROJECTS, FLOOR_TASKS] },
  };
  const server = createServer((req, res) => {
    const statement = req.method === 'POST' ? statements[req.url as keyof typeof statements] : undefined;
    if (!statement) {
      res.writeHead(404).end();
      return;
    }
    req.resume(); // the body is the GraphQL request: read, and ignored
    req.once('end', () => {
      pool.query<{ body: string }>(statement).then(
        ({ rows }) => {
          const body = rows[0]!.body;
          res
            .writeHead(200, {
              'content-type': 'application/json; charset=utf-8',
              'content-length': Buffer.byteLength(body),
            })
            .end(body);
        },
        (err: Error) => {
          const body = JSON.stringify({ errors: [{ message: err.message }] });
          res
            .writeHead(500, {
              'content-type': 'application/json; charset=utf-8',
              'content-length': Buffer.byteLength(body),
            })
            .end(body);
        },
      );
    });
  });
  return { server, close: () => pool.end() };
});
