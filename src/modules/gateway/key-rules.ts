/** A virtual key's rules (an API token with gateway limits) and how they are read and applied. */
import { AppError } from '../../shared/errors.js';
import { toMicros, type BudgetSubject } from '../billing/index.js';

/** A virtual key's rules, as the gateway reads them for a call (null: none of that kind). */
export interface KeyRules {
  id: string;
  allowedModels: string[] | null;
  boundTaskId: string | null;
  boundProjectId: string | null;
  budget: BudgetSubject | null;
}

interface KeyRow {
  allowed_models: string[] | null;
  bound_task_id: string | null;
  bound_project_id: string | null;
  daily_cost_limit_usd: string | null;
  monthly_cost_limit_usd: string | null;
  daily_token_limit: string | null;
  requests_per_minute: number | null;
}

export function keyRules(id: string, r: KeyRow): KeyRules {
  const limited =
    r.daily_cost_limit_usd !== null ||
    r.monthly_cost_limit_usd !== null ||
    r.daily_token_limit !== null ||
    r.requests_per_minute !== null;
  return {
    id,
    allowedModels: r.allowed_models?.length ? r.allowed_models : null,
    boundTaskId: r.bound_task_id,
    boundProjectId: r.bound_project_id,
    budget: limited
      ? {
          subject: `key:${id}`,
          level: 'key',
          dailyCost: r.daily_cost_limit_usd === null ? null : toMicros(r.daily_cost_limit_usd),
          monthlyCost: r.monthly_cost_limit_usd === null ? null : toMicros(r.monthly_cost_limit_usd),
          dailyTokens: r.daily_token_limit === null ? null : Number(r.daily_token_limit),
          requestsPerMinute: r.requests_per_minute,
        }
      : null,
  };
}

export const KEY_RULES_SQL = `SELECT expires_at, allowed_models, bound_task_id, bound_project_id, daily_cost_limit_usd, monthly_cost_limit_usd, daily_token_limit, requests_per_minute FROM api_tokens WHERE id = ?`;

/** A model name is allowed when it, or the model part of `<provider>/<model>`, is on the key's list. */
export function modelAllowed(rules: KeyRules, model: string): boolean {
  if (!rules.allowedModels) return true;
  return rules.allowedModels.includes(model) || rules.allowedModels.includes(model.slice(model.indexOf('/') + 1));
}

export class ModelNotAllowedError extends AppError {
  constructor(model: string) {
    super('FORBIDDEN', `This key may not use the model '${model}'`, { reason: 'model_not_allowed' });
  }
}
