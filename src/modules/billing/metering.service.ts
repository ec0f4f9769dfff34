import type { EntityManager } from '@mikro-orm/postgresql';
import type { Config } from '../../config.js';
import type { EventBus } from '../../events/bus.js';
import { AppError, ForbiddenError } from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import type { Logger } from '../../shared/logger.js';
import type { AiCallMetrics } from '../../shared/metrics-hooks.js';
import { inTransaction, type Scope, type Viewer } from '../../shared/scope.js';
import type { AuditService } from '../audit/audit.service.js';
import { classifyIntent, deviationDelta, type IntentResult } from '../ai/intent-classifier.js';
import { PromptLog, PromptStatus } from '../ai/prompt-log.entity.js';
import type { UserService } from '../identity/user.service.js';
import { NotificationPriority, NotificationType } from '../work/notification.entity.js';
import type { NotificationService } from '../work/notification.service.js';
import { COST_ALERT_TRIGGERED, type CostAlertTriggered } from './billing.events.js';
import { CostRecord } from './cost-record.entity.js';
import type { ChatMessage, ChatResult, ResolvedProvider } from './llm.js';
import { costOf, formatMicros, toMicros, type Micros } from './money.js';
import type { QuotaService, Reservation } from './quota.service.js';

/** What the pipeline needs of the providers module. */
export interface ProviderResolver {
  resolveCall(userId: string, providerId?: string | null): Promise<ResolvedProvider>;
  fallbackFor(failedProviderId: string, userId: string): Promise<ResolvedProvider | null>;
}

export interface MeteredCall {
  viewer: Viewer;
  /** The user's new message. */
  prompt: string;
  /** The whole context for the model; the new user message last. */
  messages: ChatMessage[];
  providerId?: string | null;
  conversationId?: string | null;
  projectId?: string | null;
  taskId?: string | null;
  agentType?: string | null;
  /** Logged as the PromptLog's system message. */
  systemMessage?: string | null;
  onDelta?: (text: string) => void;
  signal?: AbortSignal;
}

export interface MeteredResult {
  content: string;
  promptTokens: number;
  completionTokens: number;
  model: string;
  providerId: string;
  latencyMs: number;
  promptLogId: string;
  costUsd: string;
}

/** A provider failed and no healthy fallback answered: nothing was charged. */
export class ProviderUnavailableError extends AppError {
  constructor(message: string) {
    super('PROVIDER_UNAVAILABLE', message);
  }
}

/**
 * An upper bound of a prompt's tokens for any BPE tokenizer (a token covers at least one
 * byte), plus chat-format overhead per message: the reservation must never be below
 * what the provider will count, or a budget could be over-spent.
 */
export function promptTokenBound(messages: ChatMessage[]): number {
  return messages.reduce((n, m) => n + Buffer.byteLength(m.content) + 4, 3);
}

export interface MeteringDeps {
  config: Config;
  bus: EventBus;
  audit: AuditService;
  logger: Logger;
  quotas: QuotaService;
  providers: ProviderResolver;
  notifications: NotificationService;
  users: UserService;
  /** Optional metrics hook: a settled call, or a provider failure. */
  metrics?: AiCallMetrics;
}

interface Governance {
  intent: IntentResult;
  delta: number;
  before: number;
  after: number;
}

/**
 * THE metered pipeline: every AI call of the organisation goes through `call`.
 *  1. the user is active, not blocked, not suspended;
 *  2. requests per hour (seed 000), and
 *  3. token, message (tier) and cost quotas: the worst case is reserved atomically
 *     (QuotaService), settled to the actual usage after, released on error or abort;
 *  4. intent governance (seed 000): the prompt is classified; off-task intents raise the
 *     user's deviation score (intent-classifier.ts documents the formula) and at
 *     DEVIATION_BLOCK_THRESHOLD the user is blocked, sessions and sockets end, admins told;
 *  5. the provider call: the user's own key first, else the platform's, with an optional
 *     fallback to another healthy provider;
 *  6. PromptLog, CostRecord, daily usage and monthly usage, in the settlement transaction
 *     (with the caller's own records, e.g. the conversation's messages, via `persist`);
 *     blocked and failed calls are logged too, and charged nothing;
 *  7. cost alerts at 80/90/100% of the daily and monthly cost limits, once per period.
 */
export class MeteringService {
  constructor(private readonly d: MeteringDeps) {}

  async call(scope: Scope, call: MeteredCall, persist?: (tx: Scope, result: MeteredResult) => Promise<void>): Promise<MeteredResult> {
    const userId = call.viewer.userId;
    const em = scope.em.fork() as EntityManager;
    const started = Date.now();

    // 1. who is asking
    const [user] = await em.execute<{ status: string; is_blocked: boolean; deviation_score: string }[]>(
      `SELECT status, is_blocked, deviation_score FROM users WHERE id = ?`,
      [userId],
    );
    if (!user || user.is_blocked || user.status !== 'ACTIVE') {
      const reason = user?.is_blocked ? 'the account is blocked' : `the account is ${String(user?.status ?? 'gone').toLowerCase()}`;
      await this.log(scope, call, { status: PromptStatus.BLOCKED, errorMessage: reason });
      throw new ForbiddenError(`AI calls are refused: ${reason}`);
    }

    // 4 (before spending anything). governance
    const gov = await this.govern(scope, call, Number(user.deviation_score));
    if (gov.after >= this.d.config.DEVIATION_BLOCK_THRESHOLD && gov.delta > 0) {
      await this.blockForDeviation(scope, call, gov);
      throw new ForbiddenError(`AI calls are refused: the deviation score reached ${gov.after} (threshold ${this.d.config.DEVIATION_BLOCK_THRESHOLD}); the account is blocked`);
    }

    // 5. provider, 2–3. reservation of its worst case
    let resolved = await this.d.providers.resolveCall(userId, call.providerId);
    let reservation: Reservation;
    try {
      reservation = await this.reserveFor(em, userId, resolved, call.messages);
    } catch (err) {
      await this.log(scope, call, { status: PromptStatus.BLOCKED, errorMessage: (err as Error).message, gov, resolved });
      throw err;
    }

    let result: ChatResult;
    try {
      result = await this.ask(resolved, call);
    } catch (first) {
      const fallback = this.d.config.AI_PROVIDER_FALLBACK && !call.signal?.aborted ? await this.d.providers.fallbackFor(resolved.provider.id, userId).catch(() => null) : null;
      await this.d.quotas.release(em, reservation);
      if (fallback) this.d.metrics?.onAiCall({ provider: resolved.provider.name, status: 'error' });
      if (!fallback) return this.fail(scope, call, gov, resolved, first);
      this.d.logger.warn({ module: 'metering', provider: resolved.provider.name, fallback: fallback.provider.name, err: first }, 'provider failed; trying the fallback');
      resolved = fallback;
      try {
        reservation = await this.reserveFor(em, userId, resolved, call.messages);
      } catch (err) {
        await this.log(scope, call, { status: PromptStatus.BLOCKED, errorMessage: (err as Error).message, gov, resolved });
        throw err;
      }
      try {
        result = await this.ask(resolved, call);
      } catch (second) {
        await this.d.quotas.release(em, reservation);
        return this.fail(scope, call, gov, resolved, second);
      }
    }

    // 6–7. settle and record, in one transaction
    const p = resolved.provider;
    const inputCost = costOf(result.promptTokens, toMicros(p.inputCostPer1k));
    const outputCost = costOf(result.completionTokens, toMicros(p.outputCostPer1k));
    const cost = inputCost + outputCost;
    const tokens = result.promptTokens + result.completionTokens;
    const latencyMs = Date.now() - started;
    let settled: MeteredResult;
    try {
      settled = await inTransaction(scope, async (tx) => {
        const log = this.logRow(tx, call, { status: PromptStatus.SUCCESS, gov, resolved, result, cost, latencyMs });
        tx.em.create(
          CostRecord,
          {
            user: userId,
            projectId: call.projectId ?? null,
            conversationId: call.conversationId ?? null,
            agentType: call.agentType ?? null,
            providerId: p.id,
            provider: p.name,
            model: result.model,
            inputTokens: result.promptTokens,
            outputTokens: result.completionTokens,
            inputCost: formatMicros(inputCost),
            outputCost: formatMicros(outputCost),
            totalCost: formatMicros(cost),
            promptLogId: log.id,
          },
        );
        await tx.em.execute(
          `INSERT INTO usage_daily (id, user_id, provider, model, date, requests, tokens_in, tokens_out, cost_usd)
           VALUES (?, ?, ?, ?, (now() AT TIME ZONE 'UTC')::date, 1, ?, ?, ?::numeric)
           ON CONFLICT (user_id, provider, model, date) DO UPDATE SET requests = usage_daily.requests + 1,
             tokens_in = usage_daily.tokens_in + EXCLUDED.tokens_in, tokens_out = usage_daily.tokens_out + EXCLUDED.tokens_out,
             cost_usd = usage_daily.cost_usd + EXCLUDED.cost_usd`,
          [newId(), userId, p.name, result.model, result.promptTokens, result.completionTokens, formatMicros(cost)],
        );
        const metered: MeteredResult = {
          content: result.content,
          promptTokens: result.promptTokens,
          completionTokens: result.completionTokens,
          model: result.model,
          providerId: p.id,
          latencyMs,
          promptLogId: log.id,
          costUsd: formatMicros(cost),
        };
        if (persist) await persist(tx, metered);
        // Last, so the user's counter rows stay locked only from here to the commit.
        const alerts = await this.d.quotas.settle(tx, reservation, tokens, cost);
        await this.alert(tx, alerts);
        return metered;
      });
    } catch (err) {
      // The settlement failed (it rolled back): give the reservation back and say so in the log.
      await this.d.quotas.release(em, reservation);
      await this.log(scope, call, { status: PromptStatus.ERROR, errorMessage: `settlement failed: ${(err as Error).message}`, gov, resolved });
      throw err;
    }
    // Counted once committed, outside the try: a metrics hook can never undo a settlement.
    this.d.metrics?.onAiCall({ provider: p.name, status: 'success', promptTokens: settled.promptTokens, completionTokens: settled.completionTokens, costUsd: settled.costUsd });
    return settled;
  }

  private reserveFor(em: EntityManager, userId: string, r: ResolvedProvider, messages: ChatMessage[]): Promise<Reservation> {
    const inTokens = promptTokenBound(messages);
    const outTokens = r.provider.maxTokens;
    const cost = costOf(inTokens, toMicros(r.provider.inputCostPer1k)) + costOf(outTokens, toMicros(r.provider.outputCostPer1k));
    return this.d.quotas.reserve(em, userId, inTokens + outTokens, cost);
  }

  private ask(r: ResolvedProvider, call: MeteredCall): Promise<ChatResult> {
    return r.client.chat(
      { model: r.provider.modelName, messages: call.messages, maxTokens: r.provider.maxTokens, timeoutMs: r.provider.timeoutSeconds * 1000, signal: call.signal },
      call.onDelta,
    );
  }

  private async fail(scope: Scope, call: MeteredCall, gov: Governance, resolved: ResolvedProvider, err: unknown): Promise<never> {
    const message = call.signal?.aborted ? 'aborted by the caller' : String((err as Error)?.message ?? err).slice(0, 1000);
    await this.log(scope, call, { status: PromptStatus.ERROR, errorMessage: message, gov, resolved });
    this.d.metrics?.onAiCall({ provider: resolved.provider.name, status: 'error' });
    throw new ProviderUnavailableError(`The AI provider failed (${resolved.provider.name}): ${message}. Nothing was charged.`);
  }

  /**
   * Classifies the prompt and moves the deviation score, committed on its own (it is about
   * the prompt, whatever happens next). `score` is the one step 1 read: unchanged, it is not read again.
   */
  private async govern(scope: Scope, call: MeteredCall, score: number): Promise<Governance> {
    const intent = classifyIntent(call.prompt);
    let allowed: string[] = [];
    if (call.taskId) {
      const [t] = await scope.em.fork().execute<{ allowed_intents: string[] }[]>(`SELECT allowed_intents FROM tasks WHERE id = ?`, [call.taskId]);
      allowed = t?.allowed_intents ?? [];
    }
    const delta = deviationDelta(allowed, intent);
    if (delta === 0) return { intent, delta, before: score, after: score };
    const [row] = await scope.em.fork().execute<{ before: string; after: string }[]>(
      `WITH old AS (SELECT deviation_score FROM users WHERE id = ? FOR UPDATE)
       UPDATE users SET deviation_score = greatest(0, least(100, users.deviation_score + ?)), last_activity_at = now()
         FROM old WHERE users.id = ? RETURNING old.deviation_score AS before, users.deviation_score AS after`,
      [call.viewer.userId, delta, call.viewer.userId],
    );
    return { intent, delta, before: Number(row?.before ?? 0), after: Number(row?.after ?? 0) };
  }

  /** The automatic block (an AI decision, audited like an admin's): sessions and sockets end, admins are told. */
  private async blockForDeviation(scope: Scope, call: MeteredCall, gov: Governance) {
    const reason = `Automatic block: deviation score ${gov.after} reached the threshold ${this.d.config.DEVIATION_BLOCK_THRESHOLD} (last intent "${gov.intent.intent}" outside the task's allowed intents)`;
    await inTransaction(scope, async (tx) => {
      await this.d.users.blockAutomatically(tx, call.viewer.userId, reason, 'system:prompt-governance');
      const admins = await this.d.users.activeAdminIds();
      await this.d.notifications.notify(
        tx,
        admins.map((id) => ({ userId: id, type: NotificationType.ALERT, priority: NotificationPriority.URGENT, title: 'A user was blocked by prompt governance', message: reason, data: { userId: call.viewer.userId, taskId: call.taskId ?? null } })),
      );
      this.logRow(tx, call, { status: PromptStatus.BLOCKED, errorMessage: reason, gov });
    });
  }

  private async alert(tx: Scope, alerts: Awaited<ReturnType<QuotaService['settle']>>) {
    for (const a of alerts) {
      const period = a.alertType.startsWith('DAILY') ? 'daily' : 'monthly';
      await this.d.notifications.notify(tx, {
        userId: a.userId,
        type: NotificationType.ALERT,
        priority: a.thresholdPercentage >= 100 ? NotificationPriority.URGENT : NotificationPriority.HIGH,
        title: `AI spend reached ${a.thresholdPercentage}% of your ${period} limit`,
        message: `$${formatMicros(a.spent)} of $${formatMicros(a.limit)}`,
        data: { costAlertId: a.id, alertType: a.alertType },
      });
      await this.d.bus.publish(tx.em, COST_ALERT_TRIGGERED, { alertId: a.id, userId: a.userId } satisfies CostAlertTriggered);
    }
  }

  /** A PromptLog in its own transaction (blocked and failed calls: they must be recorded though the call throws). */
  private log(scope: Scope, call: MeteredCall, what: LogFields): Promise<void> {
    return inTransaction(scope, async (tx) => {
      this.logRow(tx, call, what);
    });
  }

  private logRow(tx: Scope, call: MeteredCall, what: LogFields): PromptLog {
    const { gov, resolved, result } = what;
    return tx.em.create(PromptLog, {
      user: call.viewer.userId,
      taskId: call.taskId ?? null,
      projectId: call.projectId ?? null,
      conversationId: call.conversationId ?? null,
      providerId: resolved?.provider.id ?? null,
      agentType: call.agentType ?? null,
      apiTokenId: call.viewer.apiTokenId ?? null,
      prompt: call.prompt,
      systemMessage: call.systemMessage ?? null,
      model: result?.model ?? resolved?.provider.modelName ?? null,
      response: result?.content ?? null,
      intent: gov?.intent.intent ?? null,
      confidence: gov ? gov.intent.confidence.toFixed(3) : null,
      deviationDelta: (gov?.delta ?? 0).toFixed(2),
      scoreBefore: gov ? gov.before.toFixed(2) : null,
      scoreAfter: gov ? gov.after.toFixed(2) : null,
      promptTokens: result?.promptTokens ?? null,
      completionTokens: result?.completionTokens ?? null,
      totalTokens: result ? result.promptTokens + result.completionTokens : null,
      responseTimeMs: what.latencyMs ?? null,
      costUsd: what.cost !== undefined ? formatMicros(what.cost) : what.status === PromptStatus.SUCCESS ? null : '0.000000',
      keySource: resolved?.keySource ?? null,
      ip: tx.meta.ip,
      userAgent: tx.meta.userAgent,
      requestId: tx.meta.requestId,
      status: what.status,
      errorMessage: what.errorMessage ?? null,
    });
  }
}

interface LogFields {
  status: PromptStatus;
  errorMessage?: string;
  gov?: Governance;
  resolved?: ResolvedProvider;
  result?: ChatResult;
  cost?: Micros;
  latencyMs?: number;
}
