import type { ServerResponse } from 'node:http';
import type { ApolloServerPlugin } from '@apollo/server';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

import type { AiCounter, EventCounter, FanoutCounter, JobCounter } from '../shared/metrics-hooks.js';

export type { AiCallReport, AiCounter, EventCounter, FanoutCounter, JobCounter } from '../shared/metrics-hooks.js';

/** Read at scrape time, not on every change. */
export interface MetricSources {
  webSockets(): number;
  subscriptions(): number;
  pool(): { total: number; idle: number; waiting: number };
}

/**
 * Prometheus metrics of one app instance: its own Registry (tests start several apps
 * in one process, so nothing goes to prom-client's global registry), the default Node
 * metrics, and Steward's own, fed through small callbacks injected where things happen
 * (the bus, the scheduler, the metered pipeline) and through an Apollo plugin.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'steward_' });
  const counters = declareCounters([registry]);
  let sources: MetricSources | undefined;
  declareSourceGauges([registry], () => sources);

  const onEvent: EventCounter = (kind, topic) => counters.events.inc({ kind, topic });
  const onFanout: FanoutCounter = (kind, topic, n) =>
    (kind === 'execution' ? counters.fanoutExecutions : counters.fanoutMessages).inc({ topic }, n);
  const onJob: JobCounter = (job, ok) => {
    counters.jobs.inc({ job });
    if (!ok) counters.jobFailures.inc({ job });
  };
  const onAiCall: AiCounter = (r) => {
    counters.aiCalls.inc({ provider: r.provider, status: r.status });
    if (r.promptTokens) counters.aiTokens.inc({ provider: r.provider, direction: 'input' }, r.promptTokens);
    if (r.completionTokens) counters.aiTokens.inc({ provider: r.provider, direction: 'output' }, r.completionTokens);
    const usd = Number(r.costUsd ?? 0);
    if (usd > 0) counters.aiSpend.inc({ provider: r.provider }, usd);
  };

  /** One operation, over HTTP or WebSocket: its count and latency (seconds since `started`, from process.hrtime.bigint()). */
  const onOperation = (name: string | null | undefined, started: bigint) => {
    const operation = name ?? 'anonymous';
    counters.requests.inc({ operation });
    counters.latency.observe({ operation }, Number(process.hrtime.bigint() - started) / 1e9);
  };
  /** Errors as the client receives them (codes set by the error formatter). */
  const onErrors = (sent: readonly { extensions?: Record<string, unknown> }[] | undefined) => {
    for (const e of sent ?? []) counters.errors.inc({ code: String(e.extensions?.code ?? 'INTERNAL_SERVER_ERROR') });
  };

  /** requestDidStart / willSendResponse: one count and one latency sample per operation, errors by code. */
  const plugin: ApolloServerPlugin<any> = {
    async requestDidStart() {
      const started = process.hrtime.bigint();
      return {
        async willSendResponse({ request, operationName, response }) {
          onOperation(operationName ?? request.operationName, started);
          onErrors(
            response.body.kind === 'single' ? response.body.singleResult.errors : response.body.initialResult.errors,
          );
        },
      };
    },
  };

  return {
    registry,
    plugin,
    onEvent,
    onFanout,
    onOperation,
    onErrors,
    onJob,
    onAiCall,
    setSources(next: MetricSources) {
      sources = next;
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * GET /metrics. Not behind GraphQL auth (a scraper has no user) and not gated: keep it
 * off the public internet (bind the port privately, or block /metrics at the proxy).
 */
export async function serveMetrics(metrics: Metrics, res: ServerResponse) {
  const text = await metrics.registry.metrics();
  res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}

/** Steward's counters and histograms, registered on `registers` (never prom-client's global registry). */
function declareCounters(registers: Registry[]) {
  const counter = <Label extends string>(name: string, help: string, labelNames: Label[]) =>
    new Counter<Label>({ name, help, labelNames, registers });
  const requests = counter('steward_graphql_requests_total', 'GraphQL operations by operation name', ['operation']);
  const latency = new Histogram({
    name: 'steward_graphql_request_duration_seconds',
    help: 'GraphQL operation latency by operation name',
    labelNames: ['operation'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const errors = counter('steward_graphql_errors_total', 'GraphQL errors by extensions.code', ['code']);
  const events = counter(
    'steward_events_total',
    "Bus events published (by this instance) and delivered (to this instance's handlers)",
    ['kind', 'topic'],
  );
  const fanoutExecutions = counter(
    'steward_subscription_executions_total',
    'Subscription events executed (once per group of like subscribers, again per viewer only where the answer depends on the viewer)',
    ['topic'],
  );
  const fanoutMessages = counter('steward_subscription_messages_total', 'Subscription messages sent to sockets', [
    'topic',
  ]);
  const jobs = counter('steward_job_runs_total', 'Scheduled job runs', ['job']);
  const jobFailures = counter('steward_job_failures_total', 'Scheduled job runs that failed', ['job']);
  const aiCalls = counter('steward_ai_calls_total', 'Metered AI calls by provider and status', ['provider', 'status']);
  const aiTokens = counter('steward_ai_tokens_total', 'Tokens of settled AI calls by provider and direction', [
    'provider',
    'direction',
  ]);
  const aiSpend = counter('steward_ai_spend_dollars_total', 'Settled AI spend in dollars by provider', ['provider']);
  return {
    requests,
    latency,
    errors,
    events,
    fanoutExecutions,
    fanoutMessages,
    jobs,
    jobFailures,
    aiCalls,
    aiTokens,
    aiSpend,
  };
}

/** Gauges read at scrape time from the sources the app sets once it runs (zero, or absent, before). */
function declareSourceGauges(registers: Registry[], sources: () => MetricSources | undefined): void {
  new Gauge({
    name: 'steward_websockets_open',
    help: 'Open WebSocket connections',
    registers,
    collect() {
      this.set(sources()?.webSockets() ?? 0);
    },
  });
  new Gauge({
    name: 'steward_subscriptions_active',
    help: 'Live GraphQL subscriptions over WebSocket',
    registers,
    collect() {
      this.set(sources()?.subscriptions() ?? 0);
    },
  });
  new Gauge({
    name: 'steward_db_pool_connections',
    help: 'Read-path pg pool: total, idle and waiting clients',
    labelNames: ['state'],
    registers,
    collect() {
      const p = sources()?.pool();
      if (!p) return;
      this.set({ state: 'total' }, p.total);
      this.set({ state: 'idle' }, p.idle);
      this.set({ state: 'waiting' }, p.waiting);
    },
  });
}
