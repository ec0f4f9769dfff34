/**
 * The shapes of the metrics hooks, in one place: the parts of Steward that report
 * (event bus, scheduler, metered pipeline, fan-out) depend on these types only, never on
 * src/server/metrics.ts, which implements them with prom-client.
 */

/** What the event bus reports: a publish (publish / publishNow) or a delivery to one in-process handler. */
export type EventCounter = (kind: 'published' | 'delivered', topic: string) => void;

/** What the scheduler reports after each run it claimed. */
export type JobCounter = (job: string, ok: boolean) => void;

/** What the metered pipeline reports after settling a call, or after a provider failed it. */
export interface AiCallReport {
  provider: string;
  status: 'success' | 'error';
  promptTokens?: number;
  completionTokens?: number;
  /** Dollars, as settled (e.g. "0.000123"). */
  costUsd?: string;
}
export type AiCounter = (report: AiCallReport) => void;

/** The metrics hook the metered pipeline receives (optional: tests and CLI tools run without one). */
export interface AiCallMetrics {
  onAiCall: AiCounter;
}

/** What the subscription fan-out reports per event and group: an execution, or messages sent. */
export type FanoutCounter = (kind: 'execution' | 'message', topic: string, n: number) => void;
