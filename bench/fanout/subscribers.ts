/** The subscriber processes (../fanout-clients.ts), driven as one pool. */
import type { ChildProcess } from 'node:child_process';

import type { ClientCommand, ClientReply, ClientStats } from '../fanout-protocol.js';
import { exitReason, Replies, spawnNode, stopChild } from './processes.js';
import { here } from './settings.js';

export interface EventWaiter {
  /** Receipt times from every client process that had member sockets. */
  done: Promise<Float64Array[]>;
  /** Time is up: every process still out reports what it has. */
  collect(): void;
}

export class ClientPool {
  private readonly replies: Replies<ClientReply>[];
  /** Member sockets per process now (a process without any never reports an event). */
  private readonly members: number[];
  private readonly waiters = new Map<
    number,
    { remaining: Set<number>; times: Float64Array[]; resolve: (t: Float64Array[]) => void }
  >();

  private constructor(private readonly procs: ChildProcess[]) {
    this.members = procs.map(() => 0);
    this.replies = procs.map(
      (p, i) =>
        new Replies<ClientReply>(p, `subscriber process ${i}`, (m) => {
          if (m.type === 'event') this.onEvent(i, m.seq, m.times);
        }),
    );
    for (const p of procs) p.once('exit', () => this.failAll());
  }

  static start(count: number): ClientPool {
    // Each process's heap holds thousands of sockets; the default old space is plenty, young space as Steward's.
    return new ClientPool(
      Array.from({ length: count }, () =>
        spawnNode(['--max-semi-space-size=64', here('../fanout-clients.js')], ['ignore', 'inherit', 'inherit', 'ipc']),
      ),
    );
  }

  init(tokens: string[], outsiderTokens: string[], variables: Record<string, unknown>, concurrency: number) {
    this.procs.forEach((p, index) => {
      const cmd: ClientCommand = {
        type: 'init',
        index,
        count: this.procs.length,
        tokens,
        outsiderTokens,
        variables,
        concurrency: Math.ceil(concurrency / this.procs.length),
      };
      p.send(cmd);
    });
  }

  /** Opens sockets until there are `members` member sockets in all (split evenly) and `outsiders` more in the first process. */
  async open(url: string, members: number, outsiders: number) {
    const n = this.procs.length;
    const results = await Promise.all(
      this.replies.map((r, i) => {
        const total = Math.floor(members / n) + (i < members % n ? 1 : 0);
        return r.request(
          { type: 'open', url, total, outsiders: i === 0 ? outsiders : 0 } satisfies ClientCommand,
          'opened',
        );
      }),
    );
    results.forEach((r, i) => (this.members[i] = r.members));
    return {
      members: results.reduce((s, r) => s + r.members, 0),
      outsiders: results.reduce((s, r) => s + r.outsiders, 0),
      failed: results.reduce((s, r) => s + r.failed, 0),
      failures: results.flatMap((r) => r.failures),
    };
  }

  expect(seq: number): EventWaiter {
    const remaining = new Set(this.members.flatMap((m, i) => (m > 0 ? [i] : [])));
    let resolve!: (t: Float64Array[]) => void;
    const done = new Promise<Float64Array[]>((r) => (resolve = r));
    const w = { remaining, times: [] as Float64Array[], resolve };
    if (remaining.size) this.waiters.set(seq, w);
    else resolve([]);
    return {
      done,
      collect: () => {
        for (const i of w.remaining) this.procs[i]!.send({ type: 'collect', seq } satisfies ClientCommand);
      },
    };
  }

  private onEvent(i: number, seq: number, times: Float64Array) {
    const w = this.waiters.get(seq);
    if (!w?.remaining.delete(i)) return;
    w.times.push(times);
    if (w.remaining.size) return;
    this.waiters.delete(seq);
    w.resolve(w.times);
  }

  /** A subscriber process died: nothing it held will report; the run stops at the next check. */
  private failAll() {
    for (const [seq, w] of this.waiters) {
      this.waiters.delete(seq);
      w.resolve(w.times);
    }
  }

  check() {
    this.procs.forEach((p, i) => {
      const why = exitReason(p);
      if (why) throw new Error(`subscriber process ${i} ${why}`);
    });
  }

  /** Every process's counters since the last call, summed. */
  async stats(): Promise<ClientStats> {
    const all = await Promise.all(
      this.replies.map((r) => r.request({ type: 'stats' } satisfies ClientCommand, 'stats')),
    );
    const sum = (pick: (s: ClientStats) => Record<string, number>) => {
      const out: Record<string, number> = {};
      for (const s of all) for (const [k, v] of Object.entries(pick(s.stats))) out[k] = (out[k] ?? 0) + v;
      return out;
    };
    return {
      closes: sum((s) => s.closes),
      unexpected: sum((s) => s.unexpected),
      late: sum((s) => s.late),
      duplicates: all.reduce((n, s) => n + s.stats.duplicates, 0),
      leaks: all.reduce((n, s) => n + s.stats.leaks, 0),
      sample: all.find((s) => s.stats.sample)?.stats.sample,
      cpuMs: all.reduce((n, s) => n + s.stats.cpuMs, 0),
    };
  }

  async closeAll() {
    await Promise.all(this.replies.map((r) => r.request({ type: 'closeAll' } satisfies ClientCommand, 'closed')));
    this.members.fill(0);
  }

  async stop() {
    await Promise.all(this.procs.map((p) => stopChild(p, 5000)));
  }
}
