/**
 * The load generator, run as a child process (see ./measure.ts: `runLoad`) so that its
 * CPU never counts as Steward's and never competes with Steward's event loop. It gets
 * one LoadSpec over IPC, runs autocannon, and answers with one LoadResult.
 *
 * Latencies are recorded from autocannon's `response` event (fractional milliseconds)
 * rather than its histogram, which rounds to whole milliseconds: single-client
 * latencies here are often around one millisecond.
 */
import autocannon from 'autocannon';

import { isGoodBody, type GraphQLRequest } from './http.js';

export interface LoadSpec {
  request: GraphQLRequest;
  connections: number;
  /** Seconds. */
  duration: number;
  /** Every response must equal this body; when absent it must only be free of errors. */
  expectBody?: string;
  /** How a body is checked without expectBody: a GraphQL answer without errors (default) or an OpenAI chat completion. */
  check?: 'graphql' | 'chat';
  /**
   * One request per connection instead of `request` for all: connection i sends
   * perConnection[i mod length] (e.g. each connection a user of its own).
   */
  perConnection?: GraphQLRequest[];
}

export interface LoadResult {
  /** Requests answered within the duration (each one's latency is recorded). */
  requests: number;
  /** Requests sent: those answered plus those still in flight when the run stopped. */
  sent: number;
  /** Seconds, as measured by autocannon. */
  seconds: number;
  requestsPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  mismatches: number;
  statusCodes: Record<string, number>;
  /** The first response that failed its check (truncated), to say why. */
  firstMismatch?: string;
  /** CPU the load generator itself used (user + system), ms. */
  cpuMs: number;
}

/** An OpenAI chat completion with an answer. */
function isChatCompletion(body: string): boolean {
  try {
    return (
      typeof (JSON.parse(body) as { choices?: { message?: { content?: unknown } }[] }).choices?.[0]?.message
        ?.content === 'string'
    );
  } catch {
    return false;
  }
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export async function load(spec: LoadSpec): Promise<LoadResult> {
  let firstMismatch: string | undefined;
  const verifyBody = (body: string) => {
    const ok =
      spec.expectBody !== undefined
        ? body === spec.expectBody
        : spec.check === 'chat'
          ? isChatCompletion(body)
          : isGoodBody(body);
    if (!ok) firstMismatch ??= body.slice(0, 500);
    return ok;
  };
  const cpuBefore = process.cpuUsage();
  let latencies = new Float64Array(1 << 16);
  let n = 0;
  const instance = autocannon({
    url: spec.request.url,
    method: 'POST',
    headers: spec.request.headers,
    body: spec.request.body,
    connections: spec.connections,
    duration: spec.duration,
    timeout: 30,
    verifyBody,
    ...(spec.perConnection?.length
      ? {
          setupClient: (() => {
            let next = 0;
            const list = spec.perConnection;
            return (client) => {
              const r = list[next++ % list.length]!;
              client.setHeadersAndBody(r.headers, r.body);
            };
          })(),
        }
      : {}),
  });
  instance.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => {
    if (n === latencies.length) {
      const grown = new Float64Array(latencies.length * 2);
      grown.set(latencies);
      latencies = grown;
    }
    latencies[n++] = ms;
  });
  const r = await instance;
  const cpu = process.cpuUsage(cpuBefore);
  const sorted = latencies.subarray(0, n).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    requests: n,
    sent: Math.max(n, r.requests.sent ?? n),
    seconds: r.duration,
    requestsPerSecond: n / r.duration,
    latencyMs: {
      p50: percentile(sorted, 0.5),
      p90: percentile(sorted, 0.9),
      p99: percentile(sorted, 0.99),
      max: n ? sorted[n - 1]! : NaN,
      mean: n ? sum / n : NaN,
    },
    errors: r.errors,
    timeouts: r.timeouts,
    non2xx: r.non2xx,
    mismatches: r.mismatches,
    statusCodes: Object.fromEntries(
      Object.entries(r.statusCodeStats ?? {}).map(([code, s]) => [code, Number(s.count)]),
    ),
    firstMismatch,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

if (process.send) {
  // The bench ended (or was interrupted): stop generating load at once.
  process.once('disconnect', () => process.exit(0));
  process.once('message', (spec: LoadSpec) => {
    load(spec).then(
      (result) => process.send!({ ok: true, result }),
      (err: unknown) => process.send!({ ok: false, error: String((err as Error)?.stack ?? err) }),
    );
  });
}
