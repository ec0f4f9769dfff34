import sql, { type Sql } from 'sql-template-tag';

import type { Config } from '../../config.js';
import type { SqlClient } from '../../db/sql.js';
import { newId } from '../../shared/ids.js';
import { formatMicros, toMicros, type Micros } from './money.js';
import {
  minuteAt,
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
}

/** A reservation waiting for its batch. */
interface Pending extends LedgerReserve {
  id: string;
  /** deviationDelta in hundredths, as the score is stored. */
  deviationCents: number;
}

/**
 * What one call does to its user's deviation score, given the score before the batch:
 * the score moves call after call, clamped to 0..100 at each step, and a chain of such
 * steps is one clamp of one shift — `min(hi, max(lo, score + shift))` — which the
 * statement applies once per user and checks against the block threshold per call.
 */
export interface DeviationStep {
  sql: { lo: string; hi: string; shift: string; last: boolean };
  before(score: number): number;
  after(score: number): number;
}

export function deviationSteps(all: Pick<Pending, 'userId' | 'deviationCents'>[]): DeviationStep[] {
  type Chain = { lo: number; hi: number; shift: number }; // in hundredths
  const apply = (f: Chain, score: number) => Math.min(f.hi, Math.max(f.lo, Math.round(score * 100) + f.shift)) / 100;
  const clamp = (v: number) => Math.min(10_000, Math.max(0, v));
  const chains = new Map<string, Chain>();
  const lastOf = new Map(all.map((c, i) => [c.userId, i]));
  return all.map((c, i) => {
    const prev = chains.get(c.userId) ?? { lo: 0, hi: 10_000, shift: 0 };
    const d = c.deviationCents;
    const next = { lo: clamp(prev.lo + d), hi: clamp(prev.hi + d), shift: prev.shift + d };
    chains.set(c.userId, next);
    const text = (v: number) => (v / 100).toFixed(2);
    return {
      sql: { lo: text(next.lo), hi: text(next.hi), shift: text(next.shift), last: lastOf.get(c.userId) === i },
      before: (score: number) => apply(prev, score),
      after: (score: number) => apply(next, score),
    };
  });
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
/** The counter rows of the periods given of the users `users` selects. */
const userWindows = (users: Sql, p: Record<'HOUR' | 'DAY' | 'MONTH', Date>) =>
  sql`user_id IN (${users}) AND ((period = 'HOUR' AND period_start = ${p.HOUR}) OR (period = 'DAY' AND period_start = ${p.DAY}) OR (period = 'MONTH' AND period_start = ${p.MONTH}))`;
const lockBudgetCounters = (where: Sql) =>
  sql`(SELECT subject, period, period_start FROM budget_counters WHERE ${where} ORDER BY subject, period FOR UPDATE) lk`;
/** The tiers' monthly message limits, as the statement reads them. */
const TIER_LIMITS = JSON.stringify(TIER_MONTHLY_MESSAGES);
const money = (m: Micros | null | undefined) => (m == null ? null : formatMicros(m));

/** A user's state and limits (their quota, else the defaults), as the reservation checks them. */
const userLimits = (config: Config) => sql`
        SELECT u.id AS user_id, u.status, u.is_blocked, u.deviation_score AS seen,
               coalesce(q.requests_per_hour, ${config.DEFAULT_REQUESTS_PER_HOUR}) AS rph,
               coalesce(q.daily_token_limit, ${config.DEFAULT_DAILY_TOKEN_LIMIT}) AS dtl,
               coalesce(q.monthly_token_limit, ${config.DEFAULT_MONTHLY_TOKEN_LIMIT}) AS mtl,
               coalesce(q.monthly_message_limit, (${TIER_LIMITS}::jsonb ->> u.tier::text)::int) AS mml,
               coalesce(q.daily_cost_limit_usd, ${config.DEFAULT_DAILY_COST_LIMIT_USD ?? null}::numeric) AS dcl,
               coalesce(q.monthly_cost_limit_usd, ${config.DEFAULT_MONTHLY_COST_LIMIT_USD ?? null}::numeric) AS mcl
          FROM users u LEFT JOIN user_quotas q ON q.user_id = u.id`;

/**
 * The limits of every budget a call counts against, one row per call, subject and period:
 * those given (`given`: a key's, the organisation's) and its project's, read here.
 */
const budgetLimits = (given: string, periods: Periods, minute: Date) => sql`
        SELECT g.call_id, g.subject, g.level, g.period, g.start, g.max_requests, g.max_tokens, g.max_cost
          FROM jsonb_to_recordset(${given}::jsonb)
            AS g(call_id uuid, subject text, level text, period text, start timestamptz, max_requests int, max_tokens bigint, max_cost numeric)
        UNION ALL
        SELECT c.id, 'project:' || b.project_id, 'project', x.period, x.start, NULL::int, NULL::bigint, x.max_cost
          FROM c JOIN project_budgets b ON b.project_id = c.project_id,
               LATERAL (VALUES ('MINUTE', ${minute}::timestamptz, NULL::numeric), ('DAY', ${periods.DAY}::timestamptz, b.daily_cost_limit_usd),
                               ('MONTH', ${periods.MONTH}::timestamptz, b.monthly_cost_limit_usd)) x(period, start, max_cost)
         WHERE b.daily_cost_limit_usd IS NOT NULL OR b.monthly_cost_limit_usd IS NOT NULL`;

/**
 * The metered call's hot path: `reserve` before the provider is asked, `settle` after it
 * answered. Each gathers the calls that arrive while the one before is being written
 * (GroupCommit) and is one statement of data-modifying CTEs, atomic by itself.
 *
 * `reserve` does what the full path does in seven or more (QuotaService.reserve, markSent,
 * the user and governance checks): it reads the users' state and limits, moves their
 * deviation scores, checks and reserves the worst case on the users' counters and on every
 * budget's — each counter row updated only if the batch fits, under the row's lock, so
 * concurrent calls cannot over-spend — and records the calls, marked sent. When anything
 * does not hold (a limit, a blocked user, the block threshold, a counter row not yet
 * created this period), `steward_fast_path_miss()` aborts the statement: nothing of it
 * commits, each call of the batch is tried again alone, and a call that still misses takes
 * the full path, which is the one place that explains a refusal. So the rules are decided
 * by the full path whenever they refuse; this path only ever admits what the full path
 * would admit (the tests at the budget edge run both).
 *
 * `settle` claims the reservation and records the call — prompt log, cost record, daily
 * usage, the user's and the budgets' counters — or writes nothing when the expiry job was first.
 */
export class MeteredLedger {
  constructor(private readonly deps: { config: Config; db: SqlClient }) {}

  /**
   * The reservations of concurrent calls, one statement for all of them (GroupCommit), on
   * the pool: each commit waits for the disk, so the reservation — made already marked
   * sent — is durable before any provider is asked. Batches go one at a time, so the flush
   * holds a batch's counter rows, but no reservation is waiting on them: the next batch is
   * still gathering in the queue.
   */
  private readonly reservations = new GroupCommit((all: Pending[]) => this.reserveAll(all));

  /**
   * The settlements of concurrent calls (GroupCommit), committed without waiting for the
   * disk: a settlement is written after its reservation was made durable (and marked
   * sent); should the database lose it in a crash, the expiry job charges the call at its
   * reserved amount and logs it.
   */
  private readonly settlements = new GroupCommit((all: LedgerSettle[]) => this.settleAll(all, this.unflushed));
  private readonly unflushed: Run = (q) => this.deps.db.queryWithoutFlush(q);

  /** The reservation, or null when the full path must decide. */
  reserve(input: LedgerReserve): Promise<LedgerReservation | null> {
    return this.reservations.add({ ...input, id: newId(), deviationCents: Math.round(input.deviationDelta * 100) });
  }

  /**
   * One statement for all of `all`, all admitted or none: should any call not hold, the
   * statement aborts and (GroupCommit) each is tried again alone, where a miss is its own.
   */
  private async reserveAll(all: Pending[]): Promise<(LedgerReservation | null)[]> {
    const now = new Date();
    const periods = periodsAt(now, this.deps.config.ORGANISATION_TIME_ZONE);
    const minute = minuteAt(now);
    const scores = deviationSteps(all);
    let row: ReserveRow | undefined;
    try {
      [row] = await this.deps.db.query<ReserveRow>(this.reserveStatement(all, scores, periods, minute));
    } catch (err) {
      if (all.length === 1 && MISS.has((err as { code?: string }).code ?? '')) return [null];
      throw err;
    }
    const users = new Map(row!.users.map((u) => [u.user_id, u]));
    return all.map((input, i) => {
      const user = users.get(input.userId)!;
      const score = Number(user.score);
      const budgets: BudgetState[] = [];
      for (const c of row!.counters) {
        if (c.user_id !== input.userId || c.period === 'HOUR') continue;
        const limit = c.period === 'DAY' ? user.dcl : user.mcl;
        if (limit !== null)
          budgets.push({
            level: 'user',
            subject: 'user',
            period: c.period,
            limit: toMicros(limit),
            spent: micros(c.spent),
          });
      }
      const subjects = row!.subjects[input.id] ?? [];
      for (const b of row!.budgets)
        if (subjects.includes(b.subject) && b.limit !== null && b.period !== 'MINUTE')
          budgets.push({
            level: b.level,
            subject: b.subject,
            period: b.period,
            limit: micros(b.limit),
            spent: micros(b.spent),
          });
      return {
        id: input.id,
        userId: input.userId,
        subjects,
        minute,
        tokens: input.tokens,
        cost: input.cost,
        periods,
        budgets,
        scoreBefore: scores[i]!.before(score),
        scoreAfter: scores[i]!.after(score),
      };
    });
  }

  private reserveStatement(all: Pending[], scores: DeviationStep[], periods: Periods, minute: Date): Sql {
    const { config } = this.deps;
    const { calls, given } = reserveInputs(all, scores, periods, minute);
    return sql`
      WITH c AS MATERIALIZED (
        SELECT * FROM jsonb_to_recordset(${calls}::jsonb)
          AS c(id uuid, user_id uuid, tokens bigint, cost numeric, project_id uuid, raises boolean, user_raises boolean,
               lo numeric, hi numeric, shift numeric, last boolean, sent jsonb)
      ), ul AS MATERIALIZED (
        ${userLimits(config)} WHERE u.id IN (SELECT user_id FROM c)
      ), held AS MATERIALIZED (
        -- The users whose score moves, or may reach the block threshold: locked first (by id), so their score is read as it is now.
        SELECT id, deviation_score FROM users
         WHERE id IN (SELECT c.user_id FROM c JOIN ul ON ul.user_id = c.user_id
                       WHERE c.last AND (c.user_raises OR least(c.hi, greatest(c.lo, ul.seen + c.shift)) <> ul.seen))
         ORDER BY id FOR NO KEY UPDATE
      ), u AS MATERIALIZED (
        SELECT ul.*, coalesce(held.deviation_score, ul.seen) AS score FROM ul LEFT JOIN held ON held.id = ul.user_id
      ), lim AS MATERIALIZED (
        ${budgetLimits(given, periods, minute)}
      ), us AS (
        SELECT user_id, count(*)::int AS n, sum(tokens) AS tokens, sum(cost) AS cost FROM c GROUP BY user_id
      ), uc AS (
        UPDATE usage_counters x
           SET reserved_requests = x.reserved_requests + s.n, reserved_tokens = x.reserved_tokens + s.tokens,
               reserved_cost_usd = x.reserved_cost_usd + s.cost
          FROM us s JOIN u ON u.user_id = s.user_id,
               ${lockUserCounters(userWindows(sql`SELECT user_id FROM us`, periods))}
         WHERE x.user_id = lk.user_id AND x.period = lk.period AND x.period_start = lk.period_start AND x.user_id = s.user_id
           AND u.status = 'ACTIVE' AND NOT u.is_blocked
           AND CASE x.period
                 WHEN 'HOUR' THEN x.requests + x.reserved_requests + s.n <= u.rph
                 WHEN 'DAY' THEN x.tokens + x.reserved_tokens + s.tokens <= u.dtl
                   AND (u.dcl IS NULL OR x.cost_usd + x.reserved_cost_usd + s.cost <= u.dcl)
                 ELSE x.requests + x.reserved_requests + s.n <= u.mml AND x.tokens + x.reserved_tokens + s.tokens <= u.mtl
                   AND (u.mcl IS NULL OR x.cost_usd + x.reserved_cost_usd + s.cost <= u.mcl)
               END
        RETURNING x.user_id, x.period::text AS period, (x.cost_usd + x.reserved_cost_usd)::text AS spent
      ), bs AS (
        SELECT l.subject, min(l.level) AS level, l.period, l.start, count(*)::int AS n, sum(c.tokens) AS tokens, sum(c.cost) AS cost,
               min(l.max_requests) AS max_requests, min(l.max_tokens) AS max_tokens, min(l.max_cost) AS max_cost
          FROM lim l JOIN c ON c.id = l.call_id GROUP BY l.subject, l.period, l.start
      ), bc AS (
        UPDATE budget_counters x
           SET reserved_requests = x.reserved_requests + l.n, reserved_tokens = x.reserved_tokens + l.tokens,
               reserved_cost_usd = x.reserved_cost_usd + l.cost
          FROM bs l, ${lockBudgetCounters(sql`(subject, period, period_start) IN (SELECT subject, period, start FROM bs)`)}
         WHERE x.subject = lk.subject AND x.period = lk.period AND x.period_start = lk.period_start
           AND x.subject = l.subject AND x.period = l.period AND x.period_start = l.start
           AND (SELECT count(*) FROM uc) = 3 * (SELECT count(*) FROM us)
           AND (l.max_requests IS NULL OR x.requests + x.reserved_requests + l.n <= l.max_requests)
           AND (l.max_tokens IS NULL OR x.tokens + x.reserved_tokens + l.tokens <= l.max_tokens)
           AND (l.max_cost IS NULL OR x.cost_usd + x.reserved_cost_usd + l.cost <= l.max_cost)
        RETURNING x.subject, l.level, x.period, l.max_cost::text AS "limit", (x.cost_usd + x.reserved_cost_usd)::text AS spent
      ), ok AS MATERIALIZED (
        SELECT (SELECT count(*) FROM uc) = 3 * (SELECT count(*) FROM us) AND (SELECT count(*) FROM bc) = (SELECT count(*) FROM bs) AS fits
      ), r AS (
        INSERT INTO quota_reservations (id, user_id, tokens, cost_usd, periods, subjects, expires_at, call, sent_at)
        SELECT c.id, c.user_id, c.tokens, c.cost, ${JSON.stringify({ ...periods, MINUTE: minute })}::jsonb,
               (SELECT coalesce(jsonb_agg(DISTINCT l.subject), '[]'::jsonb) FROM lim l WHERE l.call_id = c.id),
               now() + make_interval(secs => ${config.RESERVATION_TTL_SECONDS}), c.sent, now()
          FROM c WHERE (SELECT fits FROM ok)
        RETURNING id, subjects
      ), gov AS (
        UPDATE users SET deviation_score = least(c.hi, greatest(c.lo, held.deviation_score + c.shift)), last_activity_at = now()
          FROM c JOIN held ON held.id = c.user_id
         WHERE users.id = c.user_id AND c.last AND least(c.hi, greatest(c.lo, held.deviation_score + c.shift)) <> held.deviation_score
           AND (SELECT fits FROM ok)
      )
      SELECT CASE WHEN (SELECT fits FROM ok) AND NOT EXISTS (SELECT 1 FROM c JOIN u ON u.user_id = c.user_id
                                    WHERE c.raises AND least(c.hi, greatest(c.lo, u.score + c.shift)) >= ${config.DEVIATION_BLOCK_THRESHOLD})
                  THEN true ELSE steward_fast_path_miss() END AS ok,
             (SELECT json_agg(json_build_object('user_id', user_id, 'score', score::text, 'dcl', dcl::text, 'mcl', mcl::text)) FROM u) AS users,
             (SELECT json_object_agg(id, subjects) FROM r) AS subjects, (SELECT coalesce(json_agg(uc), '[]') FROM uc) AS counters, (SELECT coalesce(json_agg(bc), '[]') FROM bc) AS budgets`;
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

/** The statement's inputs: the calls, and the limits of the budgets known without SQL, one row per call, subject and period. */
function reserveInputs(all: Pending[], scores: DeviationStep[], periods: Periods, minute: Date) {
  const raising = new Set(all.filter((c) => c.deviationCents > 0).map((c) => c.userId));
  const calls = all.map((c, i) => ({
    id: c.id,
    user_id: c.userId,
    tokens: c.tokens,
    cost: formatMicros(c.cost),
    project_id: c.projectId,
    raises: c.deviationCents > 0,
    user_raises: raising.has(c.userId),
    ...scores[i]!.sql,
    sent: c.sent,
  }));
  const given = all.flatMap((c) =>
    c.budgets.flatMap((b) => [
      {
        call_id: c.id,
        subject: b.subject,
        level: b.level,
        period: 'MINUTE',
        start: minute,
        max_requests: b.requestsPerMinute ?? null,
      },
      {
        call_id: c.id,
        subject: b.subject,
        level: b.level,
        period: 'DAY',
        start: periods.DAY,
        max_tokens: b.dailyTokens ?? null,
        max_cost: money(b.dailyCost),
      },
      {
        call_id: c.id,
        subject: b.subject,
        level: b.level,
        period: 'MONTH',
        start: periods.MONTH,
        max_cost: money(b.monthlyCost),
      },
    ]),
  );
  return { calls: JSON.stringify(calls), given: JSON.stringify(given) };
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
  users: { user_id: string; score: string; dcl: string | null; mcl: string | null }[];
  subjects: Record<string, string[]>;
  counters: { user_id: string; period: 'HOUR' | 'DAY' | 'MONTH'; spent: string }[];
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
