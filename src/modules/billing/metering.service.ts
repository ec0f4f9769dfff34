import type { EntityManager } from '@mikro-orm/postgresql';

import type { Config } from '../../config.js';
import type { SqlClient } from '../../db/sql.js';
import type { EventBus } from '../../events/bus.js';
import { AppError, BadInputError, ForbiddenError } from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import { classifyIntent, deviationDelta, type IntentResult } from '../../shared/intent-classifier.js';
import type { Logger } from '../../shared/logger.js';
import type { AiCallMetrics } from '../../shared/metrics-hooks.js';
import { inTransaction, type Scope, type Viewer } from '../../shared/scope.js';
import { PromptLog, PromptStatus } from '../ai/prompt-log.entity.js';
import type { AuditService } from '../audit/index.js';
import type { UserService } from '../identity/index.js';
import type { ProjectPolicy } from '../projects/index.js';
import type { NotificationService } from '../work/index.js';
import { NotificationPriority, NotificationType } from '../work/notification.entity.js';
import { countPromptTokens, LlmCallError } from './clients/index.js';
import { CostAlerts } from './cost-alerts.js';
import { MeteredLedger, type LedgerSettle } from './ledger.js';
import type {
  ChatDelta,
  ChatMessage,
  ChatPassThrough,
  ChatResult,
  EmbeddingResult,
  ResolvedProvider,
  ToolCall,
} from './llm.js';
import { costOf, formatMicros, toMicros, type Micros } from './money.js';
import type { BudgetState, BudgetSubject, QuotaService, Reservation, SentCall } from './quota.service.js';
import { completionTokens as countCompletion, promptTokens as countPrompt, promptReservation } from './tokenizer.js';

/** What the pipeline needs of the providers module. */
export interface ProvidersForMetering {
  resolveCall(userId: string, providerId?: string | null): Promise<ResolvedProvider>;
  /** Another healthy provider for a failed call; with `model`, only one serving that model. */
  fallbackFor(failedProviderId: string, userId: string, model?: string | null): Promise<ResolvedProvider | null>;
  /** Real call outcomes feed provider health (a provider that refuses its key is unhealthy). */
  reportOutcome?(
    em: EntityManager,
    providerId: string,
    outcome: { ok: true } | { ok: false; error: string; unhealthyNow?: boolean },
  ): void;
}

export interface MeteredCall {
  viewer: Viewer;
  /** The user's new message. */
  prompt: string;
  /** The whole context for the model; the new user message last. */
  messages: ChatMessage[];
  providerId?: string | null;
  /** The provider chosen already (the gateway picks it by model name). */
  resolved?: ResolvedProvider;
  /** The model asked for by name (gateway): a fallback must serve the same model. */
  model?: string | null;
  /** The completion cap asked for; capped by the provider's maximum (default: that maximum). */
  maxTokens?: number | null;
  /** The gateway's pass-through of the caller's request (tools, options, raw messages). */
  passThrough?: ChatPassThrough;
  conversationId?: string | null;
  projectId?: string | null;
  taskId?: string | null;
  agentType?: string | null;
  /** Logged as the PromptLog's system message. */
  systemMessage?: string | null;
  onDelta?: (text: string) => void;
  /** Every streamed delta, tool calls included (the gateway relays them). */
  onEvent?: (delta: ChatDelta) => void;
  signal?: AbortSignal;
  /** Budgets beyond the user's own that this call counts against (a virtual key's). Project and organisation budgets apply by themselves. */
  budgets?: BudgetSubject[];
  /** A later round of one user message (an agent's tool rounds): governance counted it once already. */
  followUp?: boolean;
  /** The governing task's allowed intents, when the caller knows them already (else read by `taskId`). */
  allowedIntents?: readonly string[];
  /** Told once the call is reserved, before the provider is asked: the cost limits it counts against (a stream's headers). */
  onReserved?: (budgets: BudgetState[]) => void;
  /** An embeddings call instead of a chat: `messages` hold the inputs (for the reservation), no completion tokens. */
  embedding?: { input: string | string[]; dimensions?: number; encodingFormat?: 'float' | 'base64' };
}

export interface MeteredResult {
  /** The reply as stored (NULs escaped, see `storable`). */
  content: string;
  /** The reply exactly as the provider sent it. */
  reply: string;
  toolCalls?: ToolCall[];
  finishReason?: string;
  promptTokens: number;
  completionTokens: number;
  model: string;
  providerId: string;
  providerName: string;
  latencyMs: number;
  /** null when the expiry job had already recorded the call (it outlived its reservation). */
  promptLogId: string | null;
  costUsd: string;
  /** An embeddings call's vectors. */
  embeddings?: EmbeddingResult['data'];
  /** The cost limits the call counted against, with their spend after it. */
  budgets: BudgetState[];
}

/** A provider failed and no healthy fallback answered. */
export class ProviderUnavailableError extends AppError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('PROVIDER_UNAVAILABLE', message, details);
  }
}

/**
 * Text as PostgreSQL can store it: U+0000 (which text and jsonb refuse) written as the
 * six characters `\u0000`. What the provider was sent is logged this way, so that
 * settlement can never fail on what a user typed or a model answered.
 */
export const storable = (text: string): string => (text.includes('\u0000') ? text.replace(/\u0000/g, '\\u0000') : text);
const storableOrNull = (text: string | null | undefined): string | null => (text == null ? null : storable(text));

export interface MeteringDeps {
  config: Config;
  db: SqlClient;
  bus: EventBus;
  audit: AuditService;
  logger: Logger;
  quotas: QuotaService;
  providers: ProvidersForMetering;
  notifications: NotificationService;
  users: UserService;
  /** A project's managers are told of its cost alerts. */
  projects: { policy: Pick<ProjectPolicy, 'managers'> };
  /** Optional metrics hook: a settled call, or a provider failure. */
  metrics?: AiCallMetrics;
}

/** A call's worst case at one provider: what is reserved. */
interface Price {
  maxTokens: number;
  inTokens: number;
  inputCost: Micros;
  outputCost: Micros;
}

interface Governance {
  intent: IntentResult;
  delta: number;
  before: number;
  after: number;
}

/** One try at one provider: answered; failed after producing tokens (charged); or failed before (released). */
type Attempt =
  | { kind: 'answered'; resolved: ResolvedProvider; reservation: Reservation; result: ChatResult; price: Price }
  | {
      kind: 'partial';
      resolved: ResolvedProvider;
      reservation: Reservation;
      result: ChatResult;
      price: Price;
      reason: string;
      error: unknown;
    }
  | { kind: 'failed'; resolved: ResolvedProvider; error: unknown };

/** Why a call failed, for the log (never shown to the caller: provider text stays inside). */
const failureText = (err: unknown, signal?: AbortSignal) =>
  signal?.aborted ? 'aborted by the caller' : String((err as Error)?.message ?? err).slice(0, 1000);

/** What the caller is told of a provider failure: its kind, never the provider's own text. */
function failureKind(err: unknown, signal?: AbortSignal): string {
  if (signal?.aborted) return 'the call was aborted';
  if (err instanceof LlmCallError) {
    return {
      TIMEOUT: 'it did not answer in time',
      ABORTED: 'the call was aborted',
      AUTH: "it refused the platform's credentials",
      NETWORK: 'it could not be reached',
      UPSTREAM: `it answered with an error${err.status ? ` (HTTP ${err.status})` : ''}`,
    }[err.kind];
  }
  return 'it failed';
}

/**
 * THE metered pipeline: every AI call of the organisation goes through `call`. On the hot
 * path steps 1 to 3 (and marking the call sent) are one statement, MeteredLedger.reserve;
 * when anything there does not hold, `fullPath` runs them one by one, as below, and explains.
 *  1. the user is active, not blocked, not suspended;
 *  2. intent governance (before spending anything): the prompt is classified; off-task
 *     intents raise the user's deviation score (intent-classifier.ts documents the formula)
 *     and at DEVIATION_BLOCK_THRESHOLD the user is blocked, sessions and sockets end, admins told;
 *  3. `attempt`: requests per hour, token, message (tier) and cost quotas — the worst case
 *     (the prompt counted with the model's tokenizer, see tokenizer.ts, + the completion cap
 *     asked for, at most the provider's) is reserved atomically (QuotaService); the reservation is
 *     marked sent, then the provider is asked. A failure before any token came back gives the
 *     reservation back; a fallback (another healthy provider, of the same model for the
 *     gateway) gets one more attempt — so a call is never charged twice;
 *  4. `settle`, one statement (MeteredLedger.settle; with the caller's own records, `persist`,
 *     in one transaction): PromptLog, CostRecord, daily and monthly usage, every counter; then
 *     cost alerts at 80/90/100% of the user's and the project's daily and monthly cost limits.
 *     A call that failed after the provider produced tokens (a stall, a cut, the client gone)
 *     is settled too, for what was streamed (counted), logged ERROR with the reason. Text is
 *     stored NUL-escaped (`storable`), so settlement cannot fail on it. Should it fail anyway
 *     (the database), the reservation stays marked sent and the expiry job charges it.
 */
export class MeteringService {
  private readonly ledger: MeteredLedger;
  private readonly alerts: CostAlerts;

  constructor(private readonly deps: MeteringDeps) {
    this.ledger = new MeteredLedger(deps);
    this.alerts = new CostAlerts(deps);
  }

  async call(
    scope: Scope,
    call: MeteredCall,
    persist?: (tx: Scope, result: MeteredResult) => Promise<void>,
  ): Promise<MeteredResult> {
    const userId = call.viewer.userId;
    const em = scope.em.fork() as EntityManager;
    const started = Date.now();
    const first = call.resolved ?? (await this.deps.providers.resolveCall(userId, call.providerId));
    const intent = classifyIntent(call.prompt);
    const allowed = call.followUp
      ? []
      : (call.allowedIntents ?? (call.taskId ? await this.allowedIntentsOf(scope, call.taskId) : []));
    const delta = deviationDelta(allowed, intent);

    // The hot path: steps 1 to 3 in one statement, when everything holds (see MeteredLedger).
    const price = MeteringService.priceOf(call, first);
    const fast = await this.ledger.reserve({
      userId,
      tokens: price.inTokens + price.maxTokens,
      cost: price.inputCost + price.outputCost,
      budgets: [...(call.budgets ?? []), ...this.deps.quotas.organisationBudgets()],
      projectId: call.projectId ?? null,
      deviationDelta: delta,
      sent: this.sentCall(scope, call, first, price),
    });
    const reserved = fast
      ? {
          gov: { intent, delta, before: fast.scoreBefore, after: fast.scoreAfter },
          outcome: await this.ask(em, call, first, fast, price),
        }
      : await this.fullPath(em, scope, call, first, intent, delta);
    const gov = reserved.gov;
    let outcome = reserved.outcome;
    // Once more at a fallback if nothing came back
    if (
      outcome.kind === 'failed' &&
      this.deps.config.AI_PROVIDER_FALLBACK &&
      !call.signal?.aborted &&
      !(outcome.error instanceof AppError)
    ) {
      const failed = outcome.resolved;
      const fallback = await this.deps.providers.fallbackFor(failed.provider.id, userId, call.model).catch(() => null);
      if (fallback) {
        this.deps.metrics?.onAiCall({ provider: failed.provider.name, status: 'error' });
        this.deps.logger.warn(
          { module: 'metering', provider: failed.provider.name, fallback: fallback.provider.name, err: outcome.error },
          'provider failed; trying the fallback',
        );
        outcome = await this.attempt(em, scope, call, gov, fallback);
      }
    }
    if (outcome.kind === 'failed') return this.fail(scope, call, gov, outcome.resolved, outcome.error);

    // 4. settle and record
    const settled = await this.settle(
      scope,
      call,
      gov,
      outcome,
      started,
      outcome.kind === 'answered' ? persist : undefined,
    );
    if (outcome.kind === 'partial') {
      this.deps.metrics?.onAiCall({ provider: outcome.resolved.provider.name, status: 'error' });
      throw new ProviderUnavailableError(
        call.signal?.aborted
          ? `The call was aborted after the provider had answered in part: the ${settled.completionTokens} tokens streamed were charged ($${settled.costUsd})`
          : `The AI provider ${outcome.resolved.provider.name} failed after streaming part of its answer (${failureKind(outcome.error)}): the ${settled.completionTokens} tokens streamed were charged ($${settled.costUsd})`,
        { chargedUsd: settled.costUsd, promptLogId: settled.promptLogId },
      );
    }
    // Counted once committed: a metrics hook can never undo a settlement.
    this.deps.metrics?.onAiCall({
      provider: settled.providerName,
      status: 'success',
      promptTokens: settled.promptTokens,
      completionTokens: settled.completionTokens,
      costUsd: settled.costUsd,
    });
    return settled;
  }

  /** Steps 1 to 3 one by one: the path that explains every refusal (and the first call of a period, whose counters do not exist yet). */
  private async fullPath(
    em: EntityManager,
    scope: Scope,
    call: MeteredCall,
    first: ResolvedProvider,
    intent: IntentResult,
    delta: number,
  ): Promise<{ gov: Governance; outcome: Attempt }> {
    // 1. who is asking
    const [user] = await em.execute<{ status: string; is_blocked: boolean; deviation_score: string }[]>(
      `SELECT status, is_blocked, deviation_score FROM users WHERE id = ?`,
      [call.viewer.userId],
    );
    if (!user || user.is_blocked || user.status !== 'ACTIVE') {
      const reason = user?.is_blocked
        ? 'the account is blocked'
        : `the account is ${String(user?.status ?? 'gone').toLowerCase()}`;
      await this.log(scope, call, { status: PromptStatus.BLOCKED, errorMessage: reason });
      throw new ForbiddenError(`AI calls are refused: ${reason}`);
    }
    // 2. governance
    const gov = await this.govern(scope, call, Number(user.deviation_score), intent, delta);
    if (gov.after >= this.deps.config.DEVIATION_BLOCK_THRESHOLD && gov.delta > 0) {
      await this.blockForDeviation(scope, call, gov);
      throw new ForbiddenError(
        `AI calls are refused: the deviation score reached ${gov.after} (threshold ${this.deps.config.DEVIATION_BLOCK_THRESHOLD}); the account is blocked`,
      );
    }
    // 3. reserve, mark sent, ask
    return { gov, outcome: await this.attempt(em, scope, call, gov, first) };
  }

  /** The completion cap of a call at a provider: what was asked, never above the provider's maximum. */
  static maxTokensFor(call: Pick<MeteredCall, 'maxTokens' | 'embedding'>, r: ResolvedProvider): number {
    if (call.embedding) return 0;
    const asked = call.maxTokens ?? r.provider.maxTokens;
    return Math.max(1, Math.min(asked, r.provider.maxTokens));
  }

  /** The worst case of a call at a provider: the prompt counted with the model's tokenizer, the completion cap. */
  static priceOf(call: MeteredCall, r: ResolvedProvider): Price {
    const maxTokens = MeteringService.maxTokensFor(call, r);
    const inTokens = promptReservation(r.provider.modelName, call.messages);
    return {
      maxTokens,
      inTokens,
      inputCost: costOf(inTokens, toMicros(r.provider.inputCostPer1k)),
      outputCost: costOf(maxTokens, toMicros(r.provider.outputCostPer1k)),
    };
  }

  /** What a sent call's reservation keeps, to record the call if this instance is lost (and what settlement logs). */
  private sentCall(scope: Scope, call: MeteredCall, resolved: ResolvedProvider, price: Price): SentCall {
    const p = resolved.provider;
    return {
      providerId: p.id,
      provider: p.name,
      model: p.modelName,
      keySource: resolved.keySource,
      prompt: storable(call.prompt),
      systemMessage: storableOrNull(call.systemMessage),
      taskId: call.taskId ?? null,
      projectId: call.projectId ?? null,
      conversationId: call.conversationId ?? null,
      agentType: call.agentType ?? null,
      requestId: scope.meta.requestId,
      ip: scope.meta.ip,
      userAgent: scope.meta.userAgent,
      inputTokens: price.inTokens,
      outputTokens: price.maxTokens,
      inputCost: formatMicros(price.inputCost),
      outputCost: formatMicros(price.outputCost),
    };
  }

  /** One try at one provider by the full path (see Attempt). Throws the quota refusal (logged BLOCKED) when the worst case does not fit. */
  private async attempt(
    em: EntityManager,
    scope: Scope,
    call: MeteredCall,
    gov: Governance,
    resolved: ResolvedProvider,
  ): Promise<Attempt> {
    const price = MeteringService.priceOf(call, resolved);
    let reservation: Reservation;
    try {
      reservation = await this.deps.quotas.reserve(
        em,
        call.viewer.userId,
        price.inTokens + price.maxTokens,
        price.inputCost + price.outputCost,
        new Date(),
        { budgets: call.budgets, projectId: call.projectId },
      );
    } catch (err) {
      await this.log(scope, call, {
        status: PromptStatus.BLOCKED,
        errorMessage: (err as Error).message,
        gov,
        resolved,
      });
      throw err;
    }
    // From here on the call may cost money, whatever happens to this instance.
    await this.deps.quotas.markSent(em, reservation, this.sentCall(scope, call, resolved, price));
    return this.ask(em, call, resolved, reservation, price);
  }

  /** Asks the provider under a reservation marked sent (see Attempt). */
  private async ask(
    em: EntityManager,
    call: MeteredCall,
    resolved: ResolvedProvider,
    reservation: Reservation,
    price: Price,
  ): Promise<Attempt> {
    const p = resolved.provider;
    const { maxTokens, inTokens } = price;
    call.onReserved?.(reservation.budgets);
    let streamed = '';
    const onDelta = (text: string) => {
      streamed += text;
      call.onDelta?.(text);
    };
    const onEvent = (delta: ChatDelta) => {
      for (const t of delta.toolCalls ?? []) streamed += (t.function?.name ?? '') + (t.function?.arguments ?? '');
      call.onEvent?.(delta);
    };
    try {
      const result = call.embedding
        ? await this.embed(resolved, call)
        : await resolved.client.chat(
            {
              model: p.modelName,
              messages: call.messages,
              maxTokens,
              timeoutMs: p.timeoutSeconds * 1000,
              signal: call.signal,
              passThrough: call.passThrough,
            },
            onDelta,
            onEvent,
          );
      this.deps.providers.reportOutcome?.(em, p.id, { ok: true });
      return { kind: 'answered', resolved, reservation, result, price };
    } catch (err) {
      if (
        !call.signal?.aborted &&
        !(err instanceof AppError) &&
        !(err instanceof LlmCallError && err.kind === 'ABORTED')
      ) {
        this.deps.providers.reportOutcome?.(em, p.id, {
          ok: false,
          error: failureText(err),
          unhealthyNow: err instanceof LlmCallError && err.kind === 'AUTH',
        });
      }
      if (!streamed) {
        await this.deps.quotas.release(em, reservation);
        return { kind: 'failed', resolved, error: err };
      }
      // The provider produced tokens: they are charged, counted from what came through (never above the cap).
      const completionTokens = Math.min(countCompletion(p.modelName, streamed), maxTokens);
      const result: ChatResult = {
        content: streamed,
        promptTokens: Math.min(countPrompt(p.modelName, call.messages), inTokens),
        completionTokens,
        model: p.modelName,
        finishReason: 'error',
      };
      return {
        kind: 'partial',
        resolved,
        reservation,
        result,
        price,
        reason: failureText(err, call.signal),
        error: err,
      };
    }
  }

  private async embed(
    r: ResolvedProvider,
    call: MeteredCall,
  ): Promise<ChatResult & { embeddings: EmbeddingResult['data'] }> {
    if (!r.client.embed)
      throw new BadInputError(`Provider ${r.provider.name} serves no embeddings: use an OpenAI-compatible provider`);
    const e = call.embedding!;
    const out = await r.client.embed({
      model: r.provider.modelName,
      input: e.input,
      dimensions: e.dimensions,
      encodingFormat: e.encodingFormat,
      timeoutMs: r.provider.timeoutSeconds * 1000,
      signal: call.signal,
    });
    return {
      content: '',
      promptTokens: out.promptTokens || countPromptTokens(call.messages),
      completionTokens: 0,
      model: out.model,
      embeddings: out.data,
      usageReported: out.promptTokens > 0,
    };
  }

  /** Records an answered or partly answered call and charges it (see the class comment, step 4). */
  private async settle(
    scope: Scope,
    call: MeteredCall,
    gov: Governance,
    a: Extract<Attempt, { kind: 'answered' | 'partial' }>,
    started: number,
    persist?: (tx: Scope, result: MeteredResult) => Promise<void>,
  ): Promise<MeteredResult> {
    const { resolved, result, reservation } = a;
    const p = resolved.provider;
    const inputCost = costOf(result.promptTokens, toMicros(p.inputCostPer1k));
    const outputCost = costOf(result.completionTokens, toMicros(p.outputCostPer1k));
    const cost = inputCost + outputCost;
    const latencyMs = Date.now() - started;
    const metered: MeteredResult = {
      content: storable(result.content),
      reply: result.content,
      ...(result.toolCalls ? { toolCalls: result.toolCalls } : {}),
      ...(result.finishReason ? { finishReason: result.finishReason } : {}),
      promptTokens: result.promptTokens,
      completionTokens: result.completionTokens,
      model: result.model,
      providerId: p.id,
      providerName: p.name,
      latencyMs,
      promptLogId: null,
      costUsd: formatMicros(cost),
      budgets: reservation.budgets,
      ...('embeddings' in result ? { embeddings: (result as { embeddings: EmbeddingResult['data'] }).embeddings } : {}),
    };
    const partial =
      a.kind === 'partial'
        ? `${a.reason}; charged for the ${result.completionTokens} tokens streamed before the failure`
        : null;
    const record: LedgerSettle = {
      reservation,
      logId: newId(),
      status: partial ? 'ERROR' : 'SUCCESS',
      errorMessage: storableOrNull(partial),
      sent: this.sentCall(scope, call, resolved, a.price),
      apiTokenId: call.viewer.apiTokenId ?? null,
      response: storable(result.content),
      model: result.model,
      intent: gov.intent.intent,
      confidence: gov.intent.confidence.toFixed(3),
      deviationDelta: gov.delta.toFixed(2),
      scoreBefore: gov.before.toFixed(2),
      scoreAfter: gov.after.toFixed(2),
      promptTokens: result.promptTokens,
      completionTokens: result.completionTokens,
      inputCost,
      outputCost,
      latencyMs,
    };
    try {
      const settled = persist
        ? await inTransaction(scope, async (tx) => {
            const done = await this.ledger.settle(record, (q) => tx.em.execute(q.sql, q.values as unknown[]));
            if (done.claimed) metered.promptLogId = record.logId;
            // Persisted even when the expiry job recorded the call first (at its reserved amount): the answer was given.
            await persist(tx, metered);
            return done;
          })
        : await this.ledger.settle(record);
      if (!settled.claimed) return metered;
      metered.promptLogId = record.logId;
      metered.budgets = reservation.budgets.map((b) => ({
        ...b,
        spent: settled.spent.find((x) => x.subject === b.subject && x.period === b.period)?.spent ?? b.spent,
      }));
      await this.alerts.check(scope, reservation, metered.budgets);
      return metered;
    } catch (err) {
      // Not the text (it is storable): the database. The reservation stays, marked sent, and the
      // expiry job charges the call at its reserved amount; the caller learns it failed.
      this.deps.logger.error(
        { module: 'metering', err, reservationId: reservation.id },
        'settlement failed; the expiry job will settle the call at its reserved amount',
      );
      throw err;
    }
  }

  private async fail(
    scope: Scope,
    call: MeteredCall,
    gov: Governance,
    resolved: ResolvedProvider,
    err: unknown,
  ): Promise<never> {
    await this.log(scope, call, {
      status: PromptStatus.ERROR,
      errorMessage: failureText(err, call.signal),
      gov,
      resolved,
    });
    this.deps.metrics?.onAiCall({ provider: resolved.provider.name, status: 'error' });
    if (err instanceof AppError) throw err;
    throw new ProviderUnavailableError(
      `The AI provider ${resolved.provider.name} failed: ${failureKind(err, call.signal)}. Nothing was charged.`,
      {
        provider: resolved.provider.name,
        ...(err instanceof LlmCallError
          ? { reason: err.kind, ...(err.status ? { upstreamStatus: err.status } : {}) }
          : {}),
      },
    );
  }

  /** The task's allowed intents (governance), when the caller did not give them. */
  private async allowedIntentsOf(scope: Scope, taskId: string): Promise<string[]> {
    const [t] = await scope.em
      .fork()
      .execute<{ allowed_intents: string[] }[]>(`SELECT allowed_intents FROM tasks WHERE id = ?`, [taskId]);
    return t?.allowed_intents ?? [];
  }

  /**
   * The full path's governance step: moves the deviation score, committed on its own (it is
   * about the prompt, whatever happens next). `score` is the one step 1 read: unchanged, it is not read again.
   */
  private async govern(
    scope: Scope,
    call: MeteredCall,
    score: number,
    intent: IntentResult,
    delta: number,
  ): Promise<Governance> {
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
    const reason = `Automatic block: deviation score ${gov.after} reached the threshold ${this.deps.config.DEVIATION_BLOCK_THRESHOLD} (last intent "${gov.intent.intent}" outside the task's allowed intents)`;
    await inTransaction(scope, async (tx) => {
      await this.deps.users.blockAutomatically(tx, call.viewer.userId, reason, 'system:prompt-governance');
      const admins = await this.deps.users.activeAdminIds();
      await this.deps.notifications.notify(
        tx,
        admins.map((id) => ({
          userId: id,
          type: NotificationType.ALERT,
          priority: NotificationPriority.URGENT,
          title: 'A user was blocked by prompt governance',
          message: reason,
          data: { userId: call.viewer.userId, taskId: call.taskId ?? null },
        })),
      );
      this.logRow(tx, call, { status: PromptStatus.BLOCKED, errorMessage: reason, gov });
    });
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
      prompt: storable(call.prompt),
      systemMessage: storableOrNull(call.systemMessage),
      model: result?.model ?? resolved?.provider.modelName ?? null,
      response: storableOrNull(result?.content),
      intent: gov?.intent.intent ?? null,
      confidence: gov ? gov.intent.confidence.toFixed(3) : null,
      deviationDelta: (gov?.delta ?? 0).toFixed(2),
      scoreBefore: gov ? gov.before.toFixed(2) : null,
      scoreAfter: gov ? gov.after.toFixed(2) : null,
      promptTokens: result?.promptTokens ?? null,
      completionTokens: result?.completionTokens ?? null,
      totalTokens: result ? result.promptTokens + result.completionTokens : null,
      responseTimeMs: what.latencyMs ?? null,
      costUsd:
        what.cost !== undefined ? formatMicros(what.cost) : what.status === PromptStatus.SUCCESS ? null : '0.000000',
      keySource: resolved?.keySource ?? null,
      ip: tx.meta.ip,
      userAgent: tx.meta.userAgent,
      requestId: tx.meta.requestId,
      status: what.status,
      errorMessage: storableOrNull(what.errorMessage),
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
