/** The markdown report of a run. */
import { cpus, totalmem } from 'node:os';

import { GOAL, type FanoutSettings, type StepResult, type SystemName } from './settings.js';

export interface ReportContext {
  settings: FanoutSettings;
  startedAt: Date;
  seconds: number;
  notes: string[];
  stewardFds?: { open: number; limit: number };
  stewardLogs?: { line: string; level: string; count: number }[];
  extraNotifications?: number;
  /** What fails the bench, listed under the table. */
  problems?: string[];
}

export const fmt = (v: number, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : '–');
export const int = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '–');
export const met = (ok: boolean | undefined) => (ok === undefined ? 'not measured' : ok ? '**met**' : '**not met**');

export function renderFanout(rows: StepResult[], c: ReportContext): string {
  const s = c.settings;
  const floorAt = (step: number) => rows.find((r) => r.system === 'floor' && r.step === step);
  const stewardAt = (step: number) => rows.find((r) => r.system === 'steward' && r.step === step);
  const header = [
    'subscribers',
    'system',
    'events',
    'deliveries expected',
    'received',
    'missing',
    'p50 ms',
    'p99 ms',
    'max ms',
    'p99 ÷ floor p99',
    'KB/conn (RSS)',
    'KB/conn (RSS − young gen)',
    'KB/conn (heap)',
    'RSS MiB (young gen)',
    'loop max ms: connecting',
    'loop max ms: events',
    'CPU ms/event',
    'PG CPU ms/event',
    "subscribers' CPU ms/event",
    'busy elsewhere',
  ];
  const ordered = [...rows].sort((a, b) => a.step - b.step || (a.system === 'steward' ? -1 : 1));
  const body = ordered.map((r) => {
    const floor = r.system === 'steward' ? floorAt(r.step) : undefined;
    const missing = r.expected - r.received;
    return [
      int(r.members + r.outsiders) + (r.outsiders ? ` (${r.outsiders} outsiders)` : ''),
      r.system === 'steward' ? 'Steward (graphql-ws)' : 'raw-ws floor',
      String(r.events),
      int(r.expected),
      int(r.received),
      missing > 0 ? `**${int(missing)}**${r.late ? ` (${int(r.late)} late)` : ''}` : '0',
      fmt(r.latencyMs.p50),
      fmt(r.latencyMs.p99),
      fmt(r.latencyMs.max),
      floor ? fmt(r.latencyMs.p99 / floor.latencyMs.p99, 2) : '',
      fmt(r.rssKbPerConnection),
      fmt(r.rssOldKbPerConnection),
      fmt(r.heapKbPerConnection),
      `${int(r.rssMb)} (${int(r.youngMb)})`,
      fmt(r.loopConnectingMs, 0),
      fmt(r.loopDeliveringMs, 0),
      fmt(r.cpuMsPerEvent),
      r.system === 'steward' ? fmt(r.pgCpuMsPerEvent) : '',
      fmt(r.clientCpuMsPerEvent),
      Number.isFinite(r.elsewhereShare) ? `${Math.round(Math.max(0, r.elsewhereShare) * 100)}%` : '–',
    ];
  });
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const table = [line(header), line(header.map((_, i) => (i === 1 ? '---' : '---:'))), ...body.map(line)].join('\n');

  // Goals.
  const top = stewardAt(GOAL.topStep);
  const complete = (r: StepResult | undefined) =>
    !!r && r.failedOpens === 0 && r.received === r.expected && r.warmup.ok;
  const one = stewardAt(1000);
  const ratioGoal = (step: number) => {
    const st = stewardAt(step);
    const fl = floorAt(step);
    if (!st || !fl) return `p99 ≤ ${GOAL.floorRatio} × the raw-ws floor's p99 at ${int(step)}: not measured`;
    const ratio = st.latencyMs.p99 / fl.latencyMs.p99;
    return `p99 ≤ ${GOAL.floorRatio} × the raw-ws floor's p99 at ${int(step)}: ${met(ratio <= GOAL.floorRatio && complete(st))} (${fmt(st.latencyMs.p99)} ms vs ${fmt(fl.latencyMs.p99)} ms: ${fmt(ratio, 2)} ×)`;
  };
  const stewardRows = rows.filter((r) => r.system === 'steward');
  const worst = stewardRows.flatMap((r) => [
    { ms: r.loopConnectingMs, where: `connecting ${int(r.step)}` },
    { ms: r.loopDeliveringMs, where: `events at ${int(r.step)}` },
  ]);
  const worstBlock = worst.reduce((a, b) => (b.ms > a.ms ? b : a), { ms: -Infinity, where: '' });
  const goals = [
    `- ${int(GOAL.topStep)} concurrent subscribers on one process at ≤ ${GOAL.kbPerConnection} KB per connection: ` +
      (top
        ? `${met(complete(top) && top.rssKbPerConnection <= GOAL.kbPerConnection)} (${int(top.members + top.outsiders)} subscribed, ${top.failedOpens} failed; ${fmt(top.rssKbPerConnection)} KB per connection by RSS; ` +
          `${fmt(top.rssOldKbPerConnection)} KB without the young generation, which holds ${int(top.youngMb)} MiB whatever the sockets; ${fmt(top.heapKbPerConnection)} KB by V8 heap used)`
        : 'not measured'),
    `- p99 ≤ ${GOAL.p99AtThousandMs} ms at 1,000: ` +
      (one
        ? `${met(one.latencyMs.p99 <= GOAL.p99AtThousandMs && complete(one))} (${fmt(one.latencyMs.p99)} ms)`
        : 'not measured'),
    `- ${ratioGoal(10_000)}`,
    `- ${ratioGoal(GOAL.topStep)}`,
    `- Steward's event loop never blocked for more than ${GOAL.loopBlockMs} ms: ` +
      (stewardRows.length && Number.isFinite(worstBlock.ms)
        ? `${met(worstBlock.ms <= GOAL.loopBlockMs)} (worst ${fmt(worstBlock.ms, 0)} ms, ${worstBlock.where})`
        : 'not measured'),
    `- With per-viewer permission checks in place: every member socket is a non-admin member's; ${s.outsiders} sockets of non-members subscribed to the same project received ` +
      `${stewardRows.length ? `${stewardRows.reduce((n, r) => n + r.leaks, 0)} events` : '(not measured)'} (must be 0).`,
  ];

  const cpu = cpus();
  const sample = (sys: SystemName) => rows.find((r) => r.system === sys && r.messageBytes > 0)?.messageBytes;
  const disturbed = rows.filter((r) => r.elsewhereShare > 0.15);
  const notes = [
    ...(disturbed.length
      ? [
          `- **Disturbed run**: in ${disturbed.length} of ${rows.length} rows more than 15% of the machine's CPU went to other work during the measured events (busy elsewhere): ` +
            `their latencies, and the ratios to the floor, say as much about that work as about Steward.`,
        ]
      : []),
    `- Run ${c.startedAt.toISOString()}, ${fmt(c.seconds, 0)} s in all. Node ${process.version}, ${cpu.length} × ${cpu[0]?.model.trim() ?? 'CPU'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB; ` +
      `Steward, PostgreSQL (embedded, same machine), the ${s.clients} subscriber processes and the coordinator share these cores.`,
    `- One Steward process (\`node --max-semi-space-size=64 dist/src/main.js\`, NODE_ENV=production, jobs off, default pool) holds every socket. ` +
      (c.stewardFds
        ? `Its open-files limit is ${int(c.stewardFds.limit)} (the machine's hard limit), with ${c.stewardFds.open} files open before any socket: hence ${int(GOAL.topStep)}, not 20,000, at the top. `
        : '') +
      `The sockets are opened ${s.concurrency} handshakes at a time and kept from step to step; no WS limit needed raising (one subscription per socket; Steward has no per-address connection limit).`,
    `- Subscribers: ${int(s.users)} distinct users (role USER, each with a session and an access token), members of one project (one OWNER, the rest MAINTAINER, CONTRIBUTOR or VIEWER in turn), ` +
      `socket i of a step being user i mod ${int(s.users)}'s; each socket \`connection_init\` with its user's token, then one \`taskUpdated(projectId)\` subscription selecting \`id title status priority updatedAt\`. ` +
      `Steward therefore checks each event against each subscriber's own membership. ${s.outsiders} of Steward's sockets (opened with the first step, counted in every step, kept open) are users' who are not members: they must receive nothing.`,
    `- Events: \`updateTask\` over HTTP by the project's owner, changing the task's title; ${s.events} measured per step, one at a time: the next is published ${s.intervalMs} ms after the previous, ` +
      `or once the previous one reached every member socket (or its ${fmt(s.timeoutMs / 1000, 0)} s timeout) if later, so no event waits behind another. ` +
      `Before them, the step's warm-up: events (not counted) until one reaches every member socket, proof that every subscription is registered.`,
    `- Latency: from commit to receipt. t0 is when this process (the coordinator) receives the commit's NOTIFY on \`steward_events\` (PostgreSQL sends it at COMMIT to every listener, ` +
      `Steward's own included; this adds < 1 ms); each socket stamps its message with process.hrtime.bigint() (CLOCK_MONOTONIC, the same clock in every process) before parsing it. ` +
      `Percentiles are nearest-rank over every delivery of the step's measured events. On the floor t0 is taken in its process just before it serializes and sends the event.` +
      ` The subscriber processes' own work (subscribers' CPU ms/event, all of them together) is part of every latency, on both systems alike.`,
    `- missing: expected (member sockets × events) − received within ${fmt(s.timeoutMs / 1000, 0)} s of the commit; late ones are counted too. The bench fails unless 0, and on any socket ` +
      `that failed to subscribe, was closed by the server, received an event twice or out of order, or received what it may not see.`,
    `- KB/conn: after a full GC (Steward started with --expose-gc and ./fanout-probe.ts preloaded; the floor likewise) at the end of the step, (RSS from /proc/<pid>/status − RSS before any socket) ÷ sockets ` +
      `(the goal is judged on this one). RSS − young gen: the same without V8's young generation (physical size of new space and new large-object space, in brackets after RSS MiB): it grows under allocation ` +
      `up to 2 × --max-semi-space-size (64 MiB) and a GC does not give it back, so at small steps it dwarfs the sockets' own memory, on both systems. heap: V8 heap used likewise. Kernel socket buffers are not in RSS.`,
    `- loop max: Steward's \`steward_nodejs_eventloop_lag_max_seconds\` (prom-client: monitorEventLoopDelay at 10 ms resolution, reset at every scrape of /metrics), scraped at the end of each phase: ` +
      `connecting (opening the step's sockets, subscribing, warm-up) and events (the measured ones). The pause of the bench's forced GC is scraped away. The floor: its own monitorEventLoopDelay, the same way.`,
    `- CPU ms/event: the server process's user + system CPU (/proc) during the measured events ÷ events; PG: PostgreSQL's processes likewise (Steward only, when its pid is known). ` +
      `busy elsewhere: share of the machine's ${cpu.length} cores busy with anything but the server, PostgreSQL (when known), the subscriber processes and the coordinator during the measured events; more than a few percent means other work disturbed the figures.`,
    `- The raw-ws floor (bench/ws-floor.ts): a plain \`ws\` WebSocketServer that acks, registers subscription ids and sends each one a \`next\` message of the same shape and size ` +
      `(${sample('floor') ?? '–'} bytes as received; Steward's ${sample('steward') ?? '–'}: they differ by the event number's digits), payload serialized once per event: no authentication, no permission check, no GraphQL.`,
    ...(c.extraNotifications
      ? [
          `- ${c.extraNotifications} task-update NOTIFYs arrived that no publish waited for: \`updateTask\` announced some change more than once.`,
        ]
      : []),
    ...(c.stewardLogs?.length
      ? [`- Steward's log (warn and above): ${c.stewardLogs.map((l) => `${l.count} × ${l.line}`).join('; ')}.`]
      : []),
    ...c.notes.map((n) => `- ${n}`),
  ];
  const problems = c.problems?.length
    ? ['', '**Problems (the bench fails):**', '', ...c.problems.map((p) => `- ${p.replace(/\n\s*/g, ' ')}`)]
    : [];
  return [
    '## Subscription fan-out (bench/fanout.ts)',
    '',
    table,
    ...problems,
    '',
    'Goals:',
    '',
    ...goals,
    '',
    ...notes,
    '',
  ].join('\n');
}
