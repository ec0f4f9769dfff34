import { Verdict } from './experiment.entity.js';
import { BaselineOperator } from './version.entity.js';

/** Below this confidence a verdict that would be PASS or FAIL becomes MANUAL_REVIEW. */
export const MIN_CONFIDENCE = 0.6;

export interface BaselineRule {
  metricKey: string;
  operator: BaselineOperator;
  threshold: string;
}

export interface Check {
  metric: string;
  operator: BaselineOperator;
  threshold: number;
  value: number | null;
  holds: boolean | null;
  /** 0.5 at the threshold, rising with the relative margin to 1 at 10% or more (1 for EQ). */
  confidence: number;
}

const holds = (op: BaselineOperator, v: number, t: number) =>
  op === BaselineOperator.GT
    ? v > t
    : op === BaselineOperator.LT
      ? v < t
      : op === BaselineOperator.GTE
        ? v >= t
        : op === BaselineOperator.LTE
          ? v <= t
          : v === t;

/**
 * The AI verdict: deterministic and explainable. Each active baseline is checked; its
 * confidence is 0.5 + 5 × |value − threshold| / max(|threshold|, 1e-9), capped at 1 (a
 * value 10% past its threshold, either way, is a confident call; one sitting on it is a
 * coin toss); EQ is exact, so confidence 1. The evaluation's confidence is the lowest of
 * its checks'. Verdict: MANUAL_REVIEW when a baseline's metric is missing (confidence 0),
 * when there are no active baselines (nothing to judge by: confidence 0), or when the
 * confidence is below MIN_CONFIDENCE; else FAIL when a check fails, PASS when all hold.
 */
export function judge(
  baselines: BaselineRule[],
  metrics: Record<string, number>,
): { verdict: Verdict; confidence: number; checks: Check[] } {
  const checks: Check[] = baselines.map((b) => {
    const t = Number(b.threshold);
    const v = metrics[b.metricKey];
    if (typeof v !== 'number' || !Number.isFinite(v))
      return { metric: b.metricKey, operator: b.operator, threshold: t, value: null, holds: null, confidence: 0 };
    const confidence =
      b.operator === BaselineOperator.EQ ? 1 : Math.min(1, 0.5 + (5 * Math.abs(v - t)) / Math.max(Math.abs(t), 1e-9));
    return {
      metric: b.metricKey,
      operator: b.operator,
      threshold: t,
      value: v,
      holds: holds(b.operator, v, t),
      confidence: round(confidence),
    };
  });
  if (!checks.length) return { verdict: Verdict.MANUAL_REVIEW, confidence: 0, checks };
  const confidence = Math.min(...checks.map((c) => c.confidence));
  if (checks.some((c) => c.holds === null) || confidence < MIN_CONFIDENCE)
    return { verdict: Verdict.MANUAL_REVIEW, confidence, checks };
  return { verdict: checks.every((c) => c.holds) ? Verdict.PASS : Verdict.FAIL, confidence, checks };
}

export interface MetricComparison {
  metric: string;
  experiment: number | null;
  current: number | null;
  delta: number | null;
  better: boolean | null;
}

/**
 * The comparison report of a promotion: per baseline metric, the experiment's value
 * against the current V2's (higher is better for GT/GTE baselines, lower for LT/LTE;
 * EQ metrics are compared for equality only). PROMOTE when V2 has no metrics yet or
 * the experiment is better on at least as many metrics as it is worse; confidence is
 * the share of compared metrics that agree with the recommendation (0.5 with nothing
 * to compare against).
 */
export function compare(
  baselines: BaselineRule[],
  experiment: Record<string, number>,
  current: Record<string, unknown> | null,
): { metrics: MetricComparison[]; recommendation: 'PROMOTE' | 'KEEP_CURRENT'; confidence: number } {
  const metrics = baselines.map((b): MetricComparison => {
    const e = typeof experiment[b.metricKey] === 'number' ? experiment[b.metricKey]! : null;
    const c = current && typeof current[b.metricKey] === 'number' ? (current[b.metricKey] as number) : null;
    if (e === null || c === null) return { metric: b.metricKey, experiment: e, current: c, delta: null, better: null };
    const delta = round(e - c);
    const higher = b.operator === BaselineOperator.GT || b.operator === BaselineOperator.GTE;
    const better =
      b.operator === BaselineOperator.EQ
        ? e === Number(b.threshold)
          ? c !== e || null
          : false
        : delta === 0
          ? null
          : higher
            ? delta > 0
            : delta < 0;
    return { metric: b.metricKey, experiment: e, current: c, delta, better };
  });
  const judged = metrics.filter((m) => m.better !== null);
  if (!judged.length) return { metrics, recommendation: 'PROMOTE', confidence: 0.5 };
  const up = judged.filter((m) => m.better).length;
  const down = judged.length - up;
  const recommendation = up >= down ? 'PROMOTE' : 'KEEP_CURRENT';
  return { metrics, recommendation, confidence: round(Math.max(up, down) / judged.length) };
}

const round = (n: number) => Math.round(n * 1000) / 1000;
