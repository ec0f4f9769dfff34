import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU accounting from /proc (Linux): how much CPU PostgreSQL's processes used, and how
 * busy the whole machine was, so a run disturbed by something else on the machine says
 * so instead of silently reporting worse numbers. Elsewhere every figure is NaN.
 */
export interface CpuSnapshot {
  /** Busy CPU of the whole machine (all cores), ms. */
  machineMs: number;
  /** CPU of the PostgreSQL server and its backends, ms. */
  postgresMs: number;
  /** The same by process (ms): a backend that exits during a run must not take its past CPU out of the delta. */
  postgresByPid?: Map<number, number>;
}

let tickMs: number | undefined;
function msPerTick(): number {
  if (tickMs === undefined) {
    let hz = 100;
    try {
      hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      /* the usual Linux value */
    }
    tickMs = 1000 / hz;
  }
  return tickMs;
}

function machineBusyTicks(): number {
  // cpu  user nice system idle iowait irq softirq steal guest guest_nice
  const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return total - f[3]! - f[4]!;
}

/** utime + stime of `root` and of each of its direct children (PostgreSQL's backends and workers), by pid. */
function treeTicks(root: number): Map<number, number> {
  const ticks = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid … utime stime …": comm may hold spaces; fields restart after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const pid = Number(name);
    const ppid = Number(f[1]);
    if (pid === root || ppid === root) ticks.set(pid, Number(f[11]) + Number(f[12]));
  }
  return ticks;
}

/**
 * CPU (user + system) one process has used so far, ms, from /proc/<pid>/stat: how the
 * comparison servers, which run as child processes, are measured (Steward, in the bench's
 * own process, by process.cpuUsage()). Clock-tick resolution (10 ms), ample over a run of
 * seconds. NaN when unreadable (not Linux, or the process is gone).
 */
export function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * msPerTick();
  } catch {
    return NaN;
  }
}

export function cpuSnapshot(postgresPid: number | undefined): CpuSnapshot {
  try {
    const t = msPerTick();
    if (!postgresPid) return { machineMs: machineBusyTicks() * t, postgresMs: NaN };
    const byPid = new Map([...treeTicks(postgresPid)].map(([pid, ticks]) => [pid, ticks * t]));
    let postgresMs = 0;
    for (const ms of byPid.values()) postgresMs += ms;
    return { machineMs: machineBusyTicks() * t, postgresMs, postgresByPid: byPid };
  } catch {
    return { machineMs: NaN, postgresMs: NaN };
  }
}

/**
 * What was used between two snapshots. PostgreSQL's share sums, per process alive at the
 * end, its CPU since the first snapshot (or since it started): a backend that exits in
 * between takes its CPU out of the total, which would make the delta negative; what it
 * used in between is then counted as the machine's, not PostgreSQL's.
 */
export function cpuDelta(before: CpuSnapshot, after: CpuSnapshot): CpuSnapshot {
  let postgresMs = after.postgresMs - before.postgresMs;
  if (before.postgresByPid && after.postgresByPid) {
    postgresMs = 0;
    for (const [pid, ms] of after.postgresByPid) postgresMs += Math.max(0, ms - (before.postgresByPid.get(pid) ?? 0));
  }
  return { machineMs: after.machineMs - before.machineMs, postgresMs };
}
