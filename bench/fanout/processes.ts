/** Child processes: spawning with the hard open-files limit, stopping, reading their CPU, memory and files. */
import { execFileSync, spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Children alive, killed outright if this process exits first (an error, a signal handled elsewhere). */
export const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** `node args…` through sh, with the soft open-files limit raised to the hard one; exec keeps the pid. */
export function spawnNode(args: string[], stdio: StdioOptions, env?: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(
    '/bin/sh',
    ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', process.execPath, ...args],
    {
      stdio,
      env,
      serialization: 'advanced',
    },
  );
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** Ends a child: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export function exitReason(child: ChildProcess): string | undefined {
  if (child.exitCode !== null) return `exited with code ${child.exitCode}`;
  if (child.signalCode !== null) return `killed by ${child.signalCode}`;
  return undefined;
}

export let tickMs: number | undefined;
/** utime + stime of one process, ms (/proc). */
export function processCpuMs(pid: number): number {
  if (tickMs === undefined) {
    try {
      tickMs = 1000 / (Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100);
    } catch {
      tickMs = 10;
    }
  }
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * tickMs;
}

export const rssBytes = (pid: number) =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) * 1024;

export function openFiles(pid: number): { open: number; limit: number } {
  const limit = Number(/Max open files\s+(\d+)/.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))?.[1] ?? NaN);
  return { open: readdirSync(`/proc/${pid}/fd`).length, limit };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

/** Replies of a child, handed out in order per reply type (each command has exactly one). */
export class Replies<R extends { type: string }> {
  private readonly queues = new Map<string, { resolve: (r: R) => void; reject: (e: Error) => void }[]>();
  private failure?: Error;
  constructor(
    private readonly child: ChildProcess,
    name: string,
    onOther?: (r: R) => void,
  ) {
    child.on('message', (m: R) => {
      const waiter = this.queues.get(m.type)?.shift();
      if (waiter) waiter.resolve(m);
      else onOther?.(m);
    });
    child.once('exit', () => {
      this.failure = new Error(`${name} ${exitReason(child) ?? 'exited'}`);
      for (const q of this.queues.values()) for (const w of q.splice(0)) w.reject(this.failure);
    });
  }
  request<T extends R['type']>(cmd: object, reply: T): Promise<Extract<R, { type: T }>> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      let q = this.queues.get(reply);
      if (!q) this.queues.set(reply, (q = []));
      q.push({ resolve: (r) => resolve(r as Extract<R, { type: T }>), reject });
      this.child.send(cmd);
    });
  }
}
