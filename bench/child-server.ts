/**
 * The comparison servers of ./compare.ts (PostGraphile, the hand-written floor) run as
 * child processes of the bench, each on its own port, so that their CPU is theirs alone
 * (read from /proc/<pid>/stat, as Steward's is read in the bench's own process) and they
 * never compete with Steward's event loop. The bench starts one just before measuring it
 * and stops it right after, so it never runs during another measurement.
 *
 * The protocol, over IPC: the bench sends one ChildServerSpec; the child starts its
 * server on 127.0.0.1, on a free port, and answers { ok: true, url } (or { ok: false,
 * error }); when the bench disconnects, the child closes its server and its pool and exits.
 */
import { fork } from 'node:child_process';
import type { Server } from 'node:http';
import { fileURLToPath } from 'node:url';

export interface ChildServerSpec {
  /** Superuser URL of the bench database (the one Steward runs on). */
  dbUrl: string;
  /** Connections of the child's pool: Steward's own pool size, for a like-for-like comparison. */
  poolSize: number;
}

export interface ChildServer {
  /** Base URL, e.g. http://127.0.0.1:41234 */
  url: string;
  pid: number;
  /** Disconnects (the child closes and exits); kills it if it has not exited after 5 s. */
  stop(): Promise<void>;
}

type Answer = { ok: true; url: string } | { ok: false; error: string };

/** Forks `entry` (a module next to this one, e.g. './floor.js') and waits until it serves. */
export function startChildServer(entry: string, spec: ChildServerSpec, timeoutMs = 180_000): Promise<ChildServer> {
  const child = fork(fileURLToPath(new URL(entry, import.meta.url)), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // GRAPHILE_ENV: Grafast's production mode (fewer checks), and no warning that it is unset.
    env: { ...process.env, NODE_ENV: process.env.NODE_ENV || 'production', GRAPHILE_ENV: 'production' },
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (child.connected) child.disconnect();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    })());
  return new Promise<ChildServer>((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      void stop().finally(() => reject(new Error(`${entry}: ${why}`)));
    };
    const timer = setTimeout(() => fail(`not serving after ${timeoutMs / 1000} s`), timeoutMs);
    child.once('error', (err) => fail(err.message));
    const early = (code: number | null, signal: string | null) =>
      fail(`exited (code ${code}, signal ${signal}) before serving`);
    child.once('exit', early);
    child.once('message', (m) => {
      const answer = m as Answer;
      if (!answer.ok) return fail(answer.error);
      clearTimeout(timer);
      child.off('exit', early);
      resolve({ url: answer.url, pid: child.pid!, stop });
    });
    child.send(spec);
  });
}

/**
 * The child's side: on the bench's spec, `start` builds the server (not yet listening) and
 * says how to release what it holds; this listens, answers with the URL, and on disconnect
 * (the bench is done with it, or gone) closes everything and exits.
 */
export function serveInChild(
  start: (spec: ChildServerSpec) => Promise<{ server: Server; close: () => Promise<unknown> }>,
): void {
  if (!process.send) throw new Error('this module is a child process of the bench (./compare.ts starts it)');
  let close: () => Promise<unknown> = async () => {};
  process.once('disconnect', () => {
    const quit = setTimeout(() => process.exit(0), 3000);
    quit.unref();
    void close()
      .catch(() => {})
      .finally(() => process.exit(0));
  });
  process.once('message', (spec: ChildServerSpec) => {
    start(spec).then(
      ({ server, close: release }) => {
        close = async () => {
          server.closeAllConnections();
          await new Promise((resolve) => server.close(resolve));
          await release();
        };
        server.listen(0, '127.0.0.1', () => {
          const { port } = server.address() as { port: number };
          process.send!({ ok: true, url: `http://127.0.0.1:${port}` } satisfies Answer);
        });
      },
      (err: unknown) => process.send!({ ok: false, error: String((err as Error)?.stack ?? err) } satisfies Answer),
    );
  });
}
