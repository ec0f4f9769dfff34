import { PolicyOutcome } from './experiment.entity.js';

export interface PolicyRef {
  id: string;
  name: string;
  packagePath: string;
}

export interface PolicyResult {
  policy: string;
  policyId: string;
  /** true/false when OPA answered; null when it was not evaluated (see `error`). */
  allowed: boolean | null;
  error?: string;
  result?: unknown;
}

/**
 * Asks OPA's REST Data API about each policy: POST {OPA_URL}/v1/data/<package/path>
 * with `{ input }`. A policy allows when its document is `true` or has `allow: true`.
 * The outcome is PASSED only when every active policy was evaluated and allowed;
 * FAILED when one denied; NOT_EVALUATED when there is no OPA_URL, when the project has
 * no active policy, or when any policy could not be asked (OPA down, undefined
 * document) — a policy that was not evaluated is never reported as passed.
 */
export async function evaluatePolicies(
  opaUrl: string | undefined,
  timeoutMs: number,
  policies: PolicyRef[],
  input: unknown,
): Promise<{ outcome: PolicyOutcome; results: unknown }> {
  if (!opaUrl)
    return {
      outcome: PolicyOutcome.NOT_EVALUATED,
      results: {
        reason: 'No OPA server is configured (OPA_URL); policies were not evaluated',
        policies: policies.map((p) => p.name),
      },
    };
  if (!policies.length)
    return {
      outcome: PolicyOutcome.NOT_EVALUATED,
      results: { reason: 'The project has no active policy', policies: [] },
    };
  const results: PolicyResult[] = [];
  for (const p of policies) {
    const url = `${opaUrl.replace(/\/+$/, '')}/v1/data/${p.packagePath.split('.').map(encodeURIComponent).join('/')}`;
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ input }),
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (!res.ok) {
        results.push({ policy: p.name, policyId: p.id, allowed: null, error: `OPA answered HTTP ${res.status}` });
        continue;
      }
      const body = (await res.json()) as { result?: unknown };
      if (body.result === undefined) {
        results.push({
          policy: p.name,
          policyId: p.id,
          allowed: null,
          error: 'OPA has no document at this path (policy not loaded?)',
        });
        continue;
      }
      const r = body.result;
      const allowed = r === true || (typeof r === 'object' && r !== null && (r as { allow?: unknown }).allow === true);
      results.push({ policy: p.name, policyId: p.id, allowed, result: r });
    } catch (err) {
      results.push({
        policy: p.name,
        policyId: p.id,
        allowed: null,
        error: `OPA could not be asked: ${(err as Error).message}`,
      });
    }
  }
  const outcome = results.some((r) => r.allowed === false)
    ? PolicyOutcome.FAILED
    : results.every((r) => r.allowed === true)
      ? PolicyOutcome.PASSED
      : PolicyOutcome.NOT_EVALUATED;
  return { outcome, results };
}
