/**
 * Preloaded into Steward's process by the fan-out bench (`node --expose-gc --import
 * …/fanout-probe.js dist/src/main.js`, see ./fanout.ts), and nothing else of the bench is:
 * on the coordinator's `gc` message it runs a full garbage collection and answers with
 * the memory left (V8 heap used, and the young generation's physical size, which the
 * GC does not give back), so that memory per connection counts what the sockets retain,
 * not garbage. Without an IPC channel it does nothing.
 */
import { getHeapSpaceStatistics } from 'node:v8';

import { youngGenerationBytes, type ProbeReply } from './fanout-protocol.js';

if (process.send) {
  process.on('message', (m: { type?: string }) => {
    if (m?.type !== 'gc') return;
    const started = performance.now();
    (globalThis as { gc?: () => void }).gc?.();
    const ms = performance.now() - started;
    const { heapUsed } = process.memoryUsage();
    process.send!({
      type: 'gc',
      heapUsed,
      youngBytes: youngGenerationBytes(getHeapSpaceStatistics()),
      ms,
    } satisfies ProbeReply);
  });
  // The channel must not keep Steward alive: its own shutdown decides when it exits.
  process.channel?.unref();
}
