/** The measurement, the same for both systems: events, receipt times, steps. */
import { cpus } from 'node:os';

import { cpuDelta, cpuSnapshot } from '../cpu.js';
import type { ClientStats } from '../fanout-protocol.js';
import { openFiles, processCpuMs, sleep } from './processes.js';
import { fmt } from './report.js';
import type { FanoutSettings, StepResult, SystemName } from './settings.js';
import type { ClientPool } from './subscribers.js';

export interface Memory {
  rss: number;
  heapUsed: number;
  youngBytes: number;
}

export interface SystemUnderTest {
  name: SystemName;
  wsUrl: string;
  pid: number;
  /** Sockets of non-members to open at the first step. */
  outsiders: number;
  /** Publishes event `seq`; resolves with its t0 (ns, CLOCK_MONOTONIC). */
  publish(seq: number): Promise<number>;
  /** The largest event-loop delay since the previous call, ms. */
  loopMaxMs(): Promise<number>;
  /** Full GC, then RSS (/proc), V8 heap used and the young generation's physical size. */
  memory(): Promise<Memory>;
  /** Throws if the process is gone. */
  check(): void;
}

export let lastSeq = 0;
export const nextSeq = () => ++lastSeq;

/** One event: published, then waited for until every member socket has it or its time is up. */
export async function runEvent(
  sys: SystemUnderTest,
  clients: ClientPool,
  timeoutMs: number,
): Promise<{ t0: number; times: Float64Array[]; error?: string }> {
  const waiter = clients.expect(nextSeq());
  let t0: number;
  try {
    t0 = await sys.publish(lastSeq);
  } catch (err) {
    waiter.collect();
    return { t0: NaN, times: await waiter.done, error: (err as Error).message };
  }
  const timer = setTimeout(() => waiter.collect(), timeoutMs);
  const times = await waiter.done;
  clearTimeout(timer);
  return { t0, times };
}

export const count = (times: Float64Array[]) => times.reduce((n, a) => n + a.length, 0);

/** Nearest-rank percentile of sorted values. */
export const percentile = (sorted: Float64Array, q: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]! : NaN;

export function addCounts(into: Record<string, number>, from: Record<string, number>) {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

/** Every step on one system; a failure ends the system's run with the steps measured so far (and the error). */
export async function measureSystem(
  sys: SystemUnderTest,
  clients: ClientPool,
  settings: FanoutSettings,
  log: (m: string) => void,
  postgresPid?: number,
): Promise<{ rows: StepResult[]; error?: string }> {
  const rows: StepResult[] = [];
  const lateBySeq = new Map<number, number>();
  const noteLate = (st: ClientStats) => {
    for (const [seq, n] of Object.entries(st.late)) lateBySeq.set(Number(seq), (lateBySeq.get(Number(seq)) ?? 0) + n);
  };
  const label = sys.name === 'steward' ? 'Steward' : 'floor';
  let error: string | undefined;
  try {
    // The baseline: before any socket, after a full GC; the first steps' event-loop figures start here.
    const base = await sys.memory();
    await sys.loopMaxMs();
    let outsiders = 0;
    for (const step of settings.steps) {
      sys.check();
      clients.check();
      const wantOutsiders = sys.outsiders;
      const opened = await clients.open(sys.wsUrl, step - wantOutsiders, wantOutsiders);
      outsiders = opened.outsiders;
      const members = opened.members;
      const fds = openFiles(sys.pid);
      log(
        `  ${label} ${step.toLocaleString('en-US')}: ${members + outsiders} sockets subscribed${opened.failed ? `, ${opened.failed} FAILED (${opened.failures.join('; ')})` : ''}; ` +
          `${fds.open} of ${fds.limit} files open`,
      );

      // Until one event reaches every member socket: then every subscription is registered.
      const warmStarted = performance.now();
      let warmup = { ok: false, attempts: 0, ms: 0 };
      for (let attempt = 1; attempt <= 3 && !warmup.ok; attempt++) {
        const r = await runEvent(sys, clients, settings.timeoutMs);
        warmup = { ok: !r.error && count(r.times) >= members, attempts: attempt, ms: performance.now() - warmStarted };
        sys.check();
      }
      const loopConnectingMs = await sys.loopMaxMs();
      const before = await clients.stats(); // also starts the subscribers' CPU count afresh
      noteLate(before);

      const cpu0 = processCpuMs(sys.pid);
      const machine0 = cpuSnapshot(sys.name === 'steward' ? postgresPid : undefined);
      const self0 = process.cpuUsage();
      const wall0 = performance.now();
      const latencies: number[] = [];
      let received = 0;
      const seqs: number[] = [];
      const publishErrors: string[] = [];
      let nextAt = 0;
      for (let e = 0; e < settings.events; e++) {
        await sleep(nextAt - performance.now());
        nextAt = performance.now() + settings.intervalMs;
        const r = await runEvent(sys, clients, settings.timeoutMs);
        seqs.push(lastSeq);
        if (r.error) publishErrors.push(r.error);
        for (const times of r.times) {
          received += times.length;
          if (Number.isFinite(r.t0)) for (const t of times) latencies.push((t - r.t0) / 1e6);
        }
        sys.check();
      }
      const wallMs = performance.now() - wall0;
      const cpuMs = processCpuMs(sys.pid) - cpu0;
      const machine1 = cpuSnapshot(sys.name === 'steward' ? postgresPid : undefined);
      const self = process.cpuUsage(self0);
      const loopDeliveringMs = await sys.loopMaxMs();
      const after = await clients.stats();
      noteLate(after);
      const mem = await sys.memory();
      await sys.loopMaxMs(); // the forced GC's pause is the bench's doing, not the server's

      const sample = before.sample ?? after.sample;
      if (sample && !rows.length)
        log(`  ${label}'s next message as received (${Buffer.byteLength(sample)} bytes): ${sample}`);
      const sorted = Float64Array.from(latencies).sort();
      const sockets = members + outsiders;
      const pgMs = cpuDelta(machine0, machine1).postgresMs;
      const closes = { ...before.closes };
      addCounts(closes, after.closes);
      const unexpected = { ...before.unexpected };
      addCounts(unexpected, after.unexpected);
      const row: StepResult = {
        system: sys.name,
        step,
        members,
        outsiders,
        failedOpens: opened.failed,
        openFailures: opened.failures,
        warmup,
        events: settings.events,
        expected: members * settings.events,
        received,
        late: 0,
        latencyMs: {
          p50: percentile(sorted, 0.5),
          p99: percentile(sorted, 0.99),
          max: sorted.length ? sorted[sorted.length - 1]! : NaN,
        },
        rssMb: mem.rss / 2 ** 20,
        youngMb: mem.youngBytes / 2 ** 20,
        rssKbPerConnection: (mem.rss - base.rss) / 1024 / sockets,
        rssOldKbPerConnection: (mem.rss - mem.youngBytes - (base.rss - base.youngBytes)) / 1024 / sockets,
        heapKbPerConnection: (mem.heapUsed - base.heapUsed) / 1024 / sockets,
        loopConnectingMs,
        loopDeliveringMs,
        cpuMsPerEvent: cpuMs / settings.events,
        pgCpuMsPerEvent: pgMs / settings.events,
        clientCpuMsPerEvent: after.cpuMs / settings.events,
        elsewhereShare:
          (machine1.machineMs -
            machine0.machineMs -
            cpuMs -
            (Number.isFinite(pgMs) ? pgMs : 0) -
            after.cpuMs -
            (self.user + self.system) / 1000) /
          (wallMs * cpus().length),
        messageBytes: Buffer.byteLength(sample ?? ''),
        closes,
        unexpected,
        duplicates: before.duplicates + after.duplicates,
        leaks: before.leaks + after.leaks,
        publishErrors,
        seqs,
      };
      rows.push(row);
      log(
        `  ${label} ${step.toLocaleString('en-US')}: p50 ${fmt(row.latencyMs.p50)} ms, p99 ${fmt(row.latencyMs.p99)} ms, max ${fmt(row.latencyMs.max)} ms; ` +
          `${row.received.toLocaleString('en-US')}/${row.expected.toLocaleString('en-US')} delivered; ${fmt(row.rssKbPerConnection)} KB/conn (RSS); ` +
          `loop max ${fmt(loopConnectingMs, 0)} / ${fmt(loopDeliveringMs, 0)} ms; ${fmt(row.cpuMsPerEvent)} ms CPU/event; warm-up ${fmt(warmup.ms, 0)} ms`,
      );
    }
  } catch (err) {
    error = (err as Error).message;
    log(`  ${label} STOPPED: ${error}`);
  }
  // Stragglers of the last events: late arrivals go to their steps, anything else to the last one.
  await sleep(1000);
  try {
    const st = await clients.stats();
    noteLate(st);
    const last = rows.at(-1);
    if (last) {
      addCounts(last.closes, st.closes);
      addCounts(last.unexpected, st.unexpected);
      last.duplicates += st.duplicates;
      last.leaks += st.leaks;
    }
  } catch {
    /* the processes are gone; the error above says why */
  }
  for (const r of rows) r.late = r.seqs.reduce((n, seq) => n + (lateBySeq.get(seq) ?? 0), 0);
  return { rows, error };
}
