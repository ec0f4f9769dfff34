import sql, { join, type Sql } from 'sql-template-tag';

import type { Config } from '../../config.js';
import type { SqlClient } from '../../db/sql.js';
import { newId } from '../../shared/ids.js';
import { formatMicros, toMicros, type Micros } from './money.js';
import {
  periodsAt,
  TIER_MONTHLY_MESSAGES,
  type BudgetState,
  type BudgetSubject,
  type Periods,
  type Reservation,
  type SentCall,
} from './quota.service.js';

/** A reservation made by the one-statement path, with the deviation score it moved. */
export interface LedgerReservation extends Reservation {
  scoreBefore: number;
  scoreAfter: number;
}

export interface LedgerReserve {
  userId: string;
  tokens: number;
  cost: Micros;
  /** Budgets known without SQL (a key's, the organisation's); the project's is read by the statement. */
  budgets: BudgetSubject[];
  projectId: string | null;
  /** The deviation-score change governance decided for this prompt. */
  deviationDelta: number;
  /** What the expiry job records of the call should this instance die before settling. */
  sent: SentCall;
  now?: Date;
}

/** What a settled call stores (text already storable: NULs escaped). */
export interface LedgerSettle {
  reservation: Reservation;
  logId: string;
  status: 'SUCCESS' | 'ERROR';
  errorMessage: string | null;
  sent: SentCall;
  apiTokenId: string | null;
  response: string;
  model: string;
  intent: string | null;
  confidence: string | null;
  deviationDelta: string;
  scoreBefore: string | null;
  scoreAfter: string | null;
  promptTokens: number;
  completionTokens: number;
  inputCost: Micros;
  outputCost: Micros;
  latencyMs: number;
}

export interface LedgerSettled {
  /** false: the expiry job had settled the reservation already (nothing was written). */
  claimed: boolean;
  /** Spend after this call: the user's DAY and MONTH, and each budget subject's. */
  spent: { subject: string; period: string; spent: Micros }[];
}

/** Runs a statement: on the pool (its own transaction) or inside a caller's transaction. */
export type Run = <T>(q: Sql) => Promise<T[]>;

/** SQLSTATE of steward_fast_path_miss(), and of a deadlock PostgreSQL broke by aborting us. */
const MISS = new Set(['SWMIS', '40P01']);

/**
 * The counter rows a statement will update, locked first and in the one order every writer
 * of counters uses (QuotaService locks them so too): users' by user and period, then the
 * budgets' by subject and period. An UPDATE alone locks rows in the order it finds them on
 * disk, which changes as rows are rewritten, and two calls of one user would deadlock.
 */
const lockUserCounters = (where: Sql) =>
  sql`(SELECT user_id, period, period_start FROM usage_counters WHERE ${where} ORDER BY user_id, period FOR UPDATE) lk`;
/** A user's counter rows of the periods given. */
const userWindows = (userId: string, p: Record<'HOUR' | 'DAY' | 'MONTH', Date>) =>
  sql`user_id = ${userId}::uuid AND ((period = 'HOUR' AND period_start = ${p.HOUR}) OR (period = 'DAY' AND period_start = ${p.DAY}) OR (period = 'MONTH' AND period_start = ${p.MONTH}))`;
const lockBudgetCounters = (where: Sql) =>
  sql`(SELECT subject, period, period_start FROM budget_counters WHERE ${where} ORDER BY subject, period FOR UPDATE) lk`;
/** The tiers' monthly message limits, as the statement reads them. */
const TIER_LIMITS = JSON.stringify(TIER_MONTHLY_MESSAGES);
const money = (m: Micros | null | undefined) => (m == null ? null : formatMicros(m));

/**
 * The metered call's hot path: `reserve` before the provider is asked, `settle` after it
 * answered (with the settlements of concurrent calls). Each is one statement of
 * data-modifying CTEs, atomic by itself; `reserve` adds a one-row update that marks the call sent.
 *
 * `reserve` does what the full path does in seven or more (QuotaService.reserve, markSent,
 * the user and governance checks): it reads the user's state and limits, moves the
 * deviation score, checks and reserves the worst case on the user's counters and on every
 * budget's — each counter row updated only if the call fits, under the row's lock, so
 * concurrent calls cannot over-spend — and records the call; a second statement marks it
 * sent (see `unflushed`). When anything does not hold (a limit, a blocked user, the block
 * threshold, a counter row not yet created this period), `steward_fast_path_miss()`
 * aborts the statement: nothing of it commits and the caller takes the full path, which
 * is the one place that explains a refusal. So the rules are decided by the full path
 * whenever they refuse; this path only ever admits what the full path would admit (the
 * tests at the budget edge run both).
 *
 * `settle` claims the reservation and records the call — prompt log, cost record, daily
 * usage, the user's and the budgets' counters — or writes nothing when the expiry job was first.
 */
export class MeteredLedger {
  constructor(private readonly deps: { config: Config; db: SqlClient }) {}

  /** Runs on the pool, in autocommit. */
  private readonly pool: Run = (q) => this.deps.db.query(q);
  /**
   * Commits that do not wait for the disk, for the statements that lock counter rows (the
   * reservation, the settlements): a commit that waited would hold the locks through its
   * WAL flush, and one user's concurrent calls, queued on those rows, would go one flush
   * at a time. The call's one flushed commit comes between them: marking the reservation
   * sent, just before the provider is asked, which makes the reservation durable too (a
   * flush writes all the WAL before it). Should the database crash before that flush, the
   * reservation may be lost, but no provider was asked; after it, the reservation comes
   * back marked sent and the expiry job charges the call at its reserved amount and logs
   * it. So no call goes unrecorded or free.
   */
  private readonly unflushed: Run = (q) => this.deps.db.queryWithoutFlush(q);

  /**
   * The sent marks of concurrent calls, one statement and one flush for all of them
   * (GroupCommit): under load the flush is shared instead of paid call by call.
   */
  private readonly sentMarks = new GroupCommit(async (ids: string[]) => {
    await this.pool(sql`UPDATE quota_reservations SET sent_at = now() WHERE id = ANY(${ids}::uuid[])`);
    return ids;
  });

  /** The reservation, or null when the full path must decide. */
  async reserve(input: LedgerReserve): Promise<LedgerReservation | null> {
    const now = input.now ?? new Date();
    const periods = periodsAt(now, this.deps.config.ORGANISATION_TIME_ZONE);
    const minute = new Date(Math.floor(now.getTime() / 60_000) * 60_000);
    const id = newId();
    const q = this.reserveStatement(input, id, periods, minute);
    let row: ReserveRow | undefined;
    try {
      [row] = await this.unflushed<ReserveRow>(q);
    } catch (err) {
      if (MISS.has((err as { code?: string }).code ?? '')) return null;
      throw err;
    }
    if (!row) return null;
    await this.sentMarks.add(id);
    const subjects = [...new Set(row.budgets.map((b) => b.subject))];
    const budgets: BudgetState[] = [];
    for (const u of row.users) {
      const limit = u.period === 'DAY' ? row.dcl : u.period === 'MONTH' ? row.mcl : null;
      if (u.period !== 'HOUR' && limit !== null)
        budgets.push({
          level: 'user',
          subject: 'user',
          period: u.period,
          limit: toMicros(limit),
          spent: micros(u.spent),
        });
    }
    for (const b of row.budgets)
      if (b.limit !== null && b.period !== 'MINUTE')
        budgets.push({
          level: b.level,
          subject: b.subject,
          period: b.period,
          limit: micros(b.limit),
          spent: micros(b.spent),
        });
    return {
      id,
      userId: input.userId,
      subjects,
      minute,
      tokens: input.tokens,
      cost: input.cost,
      periods,
      budgets,
      scoreBefore: Number(row.before),
      scoreAfter: Number(row.after),
    };
  }

  private reserveStatement(input: LedgerReserve, id: string, periods: Periods, minute: Date): Sql {
    const { config } = this.deps;
    const cost = formatMicros(input.cost);
    const given = input.budgets.flatMap((b) => [
      sql`(${b.subject}, ${b.level}, 'MINUTE', ${minute}::timestamptz, ${b.requestsPerMinute ?? null}::int, NULL::bigint, NULL::numeric)`,
      sql`(${b.subject}, ${b.level}, 'DAY', ${periods.DAY}::timestamptz, NULL::int, ${b.dailyTokens ?? null}::bigint, ${money(b.dailyCost)}::numeric)`,
      sql`(${b.subject}, ${b.level}, 'MONTH', ${periods.MONTH}::timestamptz, NULL::int, NULL::bigint, ${money(b.monthlyCost)}::numeric)`,
    ]);
    const givenRows = given.length
      ? sql`SELECT * FROM (VALUES ${join(given)}) v`
      : sql`SELECT NULL::text, NULL::text, NULL::text, NULL::timestamptz, NULL::int, NULL::bigint, NULL::numeric WHERE false`;
    const delta = input.deviationDelta.toFixed(2);
    return sql`
      WITH u AS (
        SELECT u.status, u.is_blocked, u.deviation_score,
               coalesce(q.requests_per_hour, ${config.DEFAULT_REQUESTS_PER_HOUR}) AS rph,
               coalesce(q.daily_token_limit, ${config.DEFAULT_DAILY_TOKEN_LIMIT}) AS dtl,
               coalesce(q.monthly_token_limit, ${config.DEFAULT_MONTHLY_TOKEN_LIMIT}) AS mtl,
               coalesce(q.monthly_message_limit, (${TIER_LIMITS}::jsonb ->> u.tier::text)::int) AS mml,
               coalesce(q.daily_cost_limit_usd, ${config.DEFAULT_DAILY_COST_LIMIT_USD ?? null}::numeric) AS dcl,
               coalesce(q.monthly_cost_limit_usd, ${config.DEFAULT_MONTHLY_COST_LIMIT_USD ?? null}::numeric) AS mcl
          FROM users u LEFT JOIN user_quotas q ON q.user_id = u.id WHERE u.id = ${input.userId}::uuid
      ), lim(subject, level, period, period_start, max_requests, max_tokens, max_cost) AS (
        ${givenRows}
        UNION ALL
        SELECT 'project:' || b.project_id, 'project', x.period, x.period_start, NULL::int, NULL::bigint, x.max_cost
          FROM project_budgets b,
               LATERAL (VALUES ('MINUTE', ${minute}::timestamptz, NULL::numeric), ('DAY', ${periods.DAY}::timestamptz, b.daily_cost_limit_usd),
                               ('MONTH', ${periods.MONTH}::timestamptz, b.monthly_cost_limit_usd)) x(period, period_start, max_cost)
         WHERE b.project_id = ${input.projectId}::uuid AND (b.daily_cost_limit_usd IS NOT NULL OR b.monthly_cost_limit_usd IS NOT NULL)
      ), uc AS (
        UPDATE usage_counters c
           SET reserved_requests = c.reserved_requests + 1, reserved_tokens = c.reserved_tokens + ${input.tokens},
               reserved_cost_usd = c.reserved_cost_usd + ${cost}::numeric
          FROM u, ${lockUserCounters(userWindows(input.userId, periods))}
         WHERE c.user_id = lk.user_id AND c.period = lk.period AND c.period_start = lk.period_start
           AND u.status = 'ACTIVE' AND NOT u.is_blocked
           AND CASE c.period
                 WHEN 'HOUR' THEN c.requests + c.reserved_requests + 1 <= u.rph
                 WHEN 'DAY' THEN c.tokens + c.reserved_tokens + ${input.tokens} <= u.dtl
                   AND (u.dcl IS NULL OR c.cost_usd + c.reserved_cost_usd + ${cost}::numeric <= u.dcl)
                 ELSE c.requests + c.reserved_requests + 1 <= u.mml AND c.tokens + c.reserved_tokens + ${input.tokens} <= u.mtl
                   AND (u.mcl IS NULL OR c.cost_usd + c.reserved_cost_usd + ${cost}::numeric <= u.mcl)
               END
        RETURNING c.period::text AS period, (c.cost_usd + c.reserved_cost_usd)::text AS spent
      ), bc AS (
        UPDATE budget_counters c
           SET reserved_requests = c.reserved_requests + 1, reserved_tokens = c.reserved_tokens + ${input.tokens},
               reserved_cost_usd = c.reserved_cost_usd + ${cost}::numeric
          FROM lim l, ${lockBudgetCounters(sql`(subject, period, period_start) IN (SELECT subject, period, period_start FROM lim)`)}
         WHERE c.subject = lk.subject AND c.period = lk.period AND c.period_start = lk.period_start
           AND c.subject = l.subject AND c.period = l.period AND c.period_start = l.period_start
           AND (SELECT count(*) FROM uc) = 3
           AND (l.max_requests IS NULL OR c.requests + c.reserved_requests + 1 <= l.max_requests)
           AND (l.max_tokens IS NULL OR c.tokens + c.reserved_tokens + ${input.tokens} <= l.max_tokens)
           AND (l.max_cost IS NULL OR c.cost_usd + c.reserved_cost_usd + ${cost}::numeric <= l.max_cost)
        RETURNING c.subject, l.level, c.period, l.max_cost::text AS "limit", (c.cost_usd + c.reserved_cost_usd)::text AS spent
      ), r AS (
        INSERT INTO quota_reservations (id, user_id, tokens, cost_usd, periods, subjects, expires_at, call)
        SELECT ${id}::uuid, ${input.userId}::uuid, ${input.tokens}, ${cost}::numeric, ${JSON.stringify({ ...periods, MINUTE: minute })}::jsonb,
               (SELECT coalesce(jsonb_agg(DISTINCT subject), '[]'::jsonb) FROM bc),
               now() + make_interval(secs => ${config.RESERVATION_TTL_SECONDS}), ${JSON.stringify(input.sent)}::jsonb
         WHERE (SELECT count(*) FROM uc) = 3 AND (SELECT count(*) FROM bc) = (SELECT count(*) FROM lim)
        RETURNING id
      ), gov AS (
        UPDATE users SET deviation_score = greatest(0, least(100, users.deviation_score + ${delta}::numeric)), last_activity_at = now()
         WHERE users.id = ${input.userId}::uuid AND greatest(0, least(100, users.deviation_score + ${delta}::numeric)) <> users.deviation_score
           AND EXISTS (SELECT 1 FROM r)
        RETURNING users.deviation_score AS after
      ), score AS (
        SELECT u.deviation_score AS before, coalesce((SELECT after FROM gov), u.deviation_score) AS after FROM u
      )
      SELECT CASE WHEN EXISTS (SELECT 1 FROM r)
                   AND NOT (${delta}::numeric > 0 AND (SELECT after FROM score) >= ${config.DEVIATION_BLOCK_THRESHOLD})
                  THEN true ELSE steward_fast_path_miss() END AS ok,
             (SELECT before FROM score) AS before, (SELECT after FROM score) AS after,
             (SELECT dcl FROM u) AS dcl, (SELECT mcl FROM u) AS mcl,
             (SELECT json_agg(uc) FROM uc) AS users, (SELECT coalesce(json_agg(bc), '[]') FROM bc) AS budgets`;
  }

  /**
   * Claims the reservation and records the call: on the pool (`run` omitted), batched with
   * the settlements of concurrent calls (see GroupCommit), or inside the caller's
   * transaction (a conversation stores its message with it).
   */
  settle(s: LedgerSettle, run?: Run): Promise<LedgerSettled> {
    if (run) return this.settleAll([s], run).then(([r]) => r!);
    return this.settlements.add(s);
  }

  /**
   * The settlements of concurrent calls (GroupCommit): one statement and one commit serve
   * many calls, and one user's calls queue on their counter rows once per batch, not once per call.
   */
  private readonly settlements = new GroupCommit((all: LedgerSettle[]) => this.settleAll(all, this.unflushed));

  /** One statement for all of `all`: each claimed reservation recorded, the counters moved by their sums. */
  private async settleAll(all: LedgerSettle[], run: Run): Promise<LedgerSettled[]> {
    const q = this.settleStatement(all);
    let row: SettleRow | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        [row] = await run<SettleRow>(q);
        break;
      } catch (err) {
        // A deadlock PostgreSQL broke by aborting this statement: nothing of it was written, run it again.
        if (run !== this.unflushed || attempt === 3 || (err as { code?: string }).code !== '40P01') throw err;
      }
    }
    const claimed = new Set(row!.claimed ?? []);
    const users = row!.users ?? [];
    const budgets = row!.budgets ?? [];
    const at = (d: Date) => d.getTime();
    return all.map(({ reservation: r }) => {
      const start = (period: string) => at(period === 'MINUTE' ? r.minute : r.periods[period as keyof Periods]);
      const mine = [
        ...users.filter((u) => u.user_id === r.userId).map((u) => ({ ...u, subject: 'user' })),
        ...budgets.filter((b) => r.subjects.includes(b.subject)),
      ].filter((x) => at(new Date(x.period_start)) === start(x.period));
      return {
        claimed: claimed.has(r.id),
        spent: mine.map((x) => ({ subject: x.subject, period: x.period, spent: micros(x.spent) })),
      };
    });
  }

  private settleStatement(all: LedgerSettle[]): Sql {
    const rows = all.map(settleInput);
    return sql`
      WITH x AS MATERIALIZED (
        SELECT x.*, x.prompt_tokens + x.completion_tokens AS total_tokens, x.input_cost + x.output_cost AS cost
          FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS x(
            rid uuid, log_id uuid, cost_id uuid, daily_id uuid, hour timestamptz, day timestamptz, month timestamptz, minute timestamptz,
            subjects jsonb, task_id uuid, project_id uuid, conversation_id uuid, provider_id uuid, provider text, agent_type text,
            api_token_id uuid, prompt text, system_message text, model text, response text, intent text, confidence numeric,
            deviation_delta numeric, score_before numeric, score_after numeric, prompt_tokens int, completion_tokens int, latency_ms int,
            input_cost numeric, output_cost numeric, key_source text, ip inet, user_agent text, request_id text, status prompt_status,
            error_message text)
      ), k AS (
        DELETE FROM quota_reservations q USING x WHERE q.id = x.rid RETURNING q.id, q.user_id, q.tokens, q.cost_usd
      ), kx AS MATERIALIZED (
        SELECT x.*, k.user_id, k.tokens AS reserved_tokens, k.cost_usd AS reserved_cost FROM x JOIN k ON k.id = x.rid
      ), du AS (
        SELECT kx.user_id, w.period, w.start, count(*)::int AS n, sum(kx.total_tokens) AS tokens, sum(kx.cost) AS cost,
               sum(kx.reserved_tokens) AS reserved_tokens, sum(kx.reserved_cost) AS reserved_cost
          FROM kx, LATERAL (VALUES ('HOUR'::usage_period, kx.hour), ('DAY', kx.day), ('MONTH', kx.month)) w(period, start)
         GROUP BY 1, 2, 3
      ), uc AS (
        UPDATE usage_counters c
           SET requests = c.requests + d.n, messages = c.messages + d.n, tokens = c.tokens + d.tokens, cost_usd = c.cost_usd + d.cost,
               reserved_requests = c.reserved_requests - d.n, reserved_tokens = c.reserved_tokens - d.reserved_tokens,
               reserved_cost_usd = c.reserved_cost_usd - d.reserved_cost
          FROM du d, ${lockUserCounters(sql`(user_id, period, period_start) IN (SELECT user_id, period, start FROM du)`)}
         WHERE c.user_id = lk.user_id AND c.period = lk.period AND c.period_start = lk.period_start
           AND c.user_id = d.user_id AND c.period = d.period AND c.period_start = d.start
        RETURNING c.user_id, c.period::text AS period, c.period_start, c.cost_usd::text AS spent
      ), db AS (
        SELECT s.subject, w.period, w.start, count(*)::int AS n, sum(kx.total_tokens) AS tokens, sum(kx.cost) AS cost,
               sum(kx.reserved_tokens) AS reserved_tokens, sum(kx.reserved_cost) AS reserved_cost
          FROM kx, jsonb_array_elements_text(kx.subjects) s(subject),
               LATERAL (VALUES ('MINUTE', kx.minute), ('DAY', kx.day), ('MONTH', kx.month)) w(period, start)
         GROUP BY 1, 2, 3
      ), bc AS (
        UPDATE budget_counters c
           SET requests = c.requests + d.n, tokens = c.tokens + d.tokens, cost_usd = c.cost_usd + d.cost,
               reserved_requests = c.reserved_requests - d.n, reserved_tokens = c.reserved_tokens - d.reserved_tokens,
               reserved_cost_usd = c.reserved_cost_usd - d.reserved_cost
          FROM db d, ${lockBudgetCounters(sql`(subject, period, period_start) IN (SELECT subject, period, start FROM db)`)}
         WHERE c.subject = lk.subject AND c.period = lk.period AND c.period_start = lk.period_start
           AND c.subject = d.subject AND c.period = d.period AND c.period_start = d.start AND (SELECT count(*) FROM uc) >= 0
        RETURNING c.subject, c.period, c.period_start, c.cost_usd::text AS spent
      ), log AS (
        INSERT INTO prompt_logs (id, user_id, task_id, project_id, conversation_id, provider_id, agent_type, api_token_id, prompt, system_message, model, response,
                                 intent, confidence, deviation_delta, score_before, score_after, prompt_tokens, completion_tokens, total_tokens, response_time_ms,
                                 cost_usd, key_source, ip, user_agent, request_id, status, error_message)
        SELECT log_id, user_id, task_id, project_id, conversation_id, provider_id, agent_type, api_token_id, prompt, system_message, model, response,
               intent, confidence, deviation_delta, score_before, score_after, prompt_tokens, completion_tokens, total_tokens, latency_ms,
               cost, key_source, ip, user_agent, request_id, status, error_message
          FROM kx
      ), cr AS (
        INSERT INTO cost_records (id, user_id, project_id, conversation_id, agent_type, provider_id, provider, model, input_tokens, output_tokens,
                                  input_cost, output_cost, total_cost, prompt_log_id)
        SELECT cost_id, user_id, project_id, conversation_id, agent_type, provider_id, provider, model, prompt_tokens, completion_tokens,
               input_cost, output_cost, cost, log_id
          FROM kx
      ), ud AS (
        INSERT INTO usage_daily (id, user_id, provider, model, date, requests, tokens_in, tokens_out, cost_usd)
        SELECT min(daily_id::text)::uuid, user_id, provider, model, (now() AT TIME ZONE ${this.deps.config.ORGANISATION_TIME_ZONE})::date,
               count(*), sum(prompt_tokens), sum(completion_tokens), sum(cost)
          FROM kx GROUP BY user_id, provider, model
        ON CONFLICT (user_id, provider, model, date) DO UPDATE SET requests = usage_daily.requests + EXCLUDED.requests,
           tokens_in = usage_daily.tokens_in + EXCLUDED.tokens_in, tokens_out = usage_daily.tokens_out + EXCLUDED.tokens_out,
           cost_usd = usage_daily.cost_usd + EXCLUDED.cost_usd
      )
      SELECT (SELECT json_agg(id) FROM k) AS claimed, (SELECT json_agg(uc) FROM uc) AS users, (SELECT json_agg(bc) FROM bc) AS budgets`;
  }
}

/** One settlement as the statement reads it (jsonb_to_recordset's columns). */
const settleInput = (s: LedgerSettle) => {
  const c = s.sent;
  const r = s.reservation;
  return {
    rid: r.id,
    log_id: s.logId,
    cost_id: newId(),
    daily_id: newId(),
    hour: r.periods.HOUR,
    day: r.periods.DAY,
    month: r.periods.MONTH,
    minute: r.minute,
    subjects: r.subjects,
    task_id: c.taskId,
    project_id: c.projectId,
    conversation_id: c.conversationId,
    provider_id: c.providerId,
    provider: c.provider,
    agent_type: c.agentType,
    api_token_id: s.apiTokenId,
    prompt: c.prompt,
    system_message: c.systemMessage,
    model: s.model,
    response: s.response,
    intent: s.intent,
    confidence: s.confidence,
    deviation_delta: s.deviationDelta,
    score_before: s.scoreBefore,
    score_after: s.scoreAfter,
    prompt_tokens: s.promptTokens,
    completion_tokens: s.completionTokens,
    latency_ms: s.latencyMs,
    input_cost: formatMicros(s.inputCost),
    output_cost: formatMicros(s.outputCost),
    key_source: c.keySource,
    ip: c.ip,
    user_agent: c.userAgent,
    request_id: c.requestId,
    status: s.status,
    error_message: s.errorMessage,
  };
};

/**
 * Group commit: what arrives while a batch is being written waits and goes out together as
 * the next one; what arrives alone goes at once, so nothing waits for a timer. Should a
 * batch fail, its items are written one by one, so that one item's failure stays its own.
 */
export class GroupCommit<In, Out> {
  private queue: { item: In; resolve: (r: Out) => void; reject: (e: unknown) => void }[] = [];
  private writing = false;

  constructor(private readonly write: (all: In[]) => Promise<Out[]>) {}

  add(item: In): Promise<Out> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0, MAX_BATCH);
        try {
          const done = await this.write(batch.map((b) => b.item));
          batch.forEach((b, i) => b.resolve(done[i]!));
        } catch (err) {
          if (batch.length === 1) batch[0]!.reject(err);
          else
            for (const b of batch)
              await this.write([b.item]).then(
                ([r]) => b.resolve(r!),
                (e: unknown) => b.reject(e),
              );
        }
      }
    } finally {
      this.writing = false;
    }
  }
}

/** Items per batch at most: bounds a statement's size (a settlement carries its prompt and answer). */
const MAX_BATCH = 64;

interface SettleRow {
  claimed: string[] | null;
  users: { user_id: string; period: string; period_start: string; spent: string }[] | null;
  budgets: { subject: string; period: string; period_start: string; spent: string }[] | null;
}

interface ReserveRow {
  ok: boolean;
  before: string;
  after: string;
  dcl: string | null;
  mcl: string | null;
  users: { period: 'HOUR' | 'DAY' | 'MONTH'; spent: string }[];
  budgets: {
    subject: string;
    level: BudgetSubject['level'];
    period: 'MINUTE' | 'DAY' | 'MONTH';
    limit: string | null;
    spent: string;
  }[];
}

/** Amounts come back as decimal text (json_agg would make numeric a JSON number, losing digits). */
const micros = (v: string): Micros => toMicros(v);
