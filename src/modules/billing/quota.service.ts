import type { EntityManager } from '@mikro-orm/postgresql';

import type { Config } from '../../config.js';
import { QuotaExceededError, RateLimitedError } from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import { inTransaction, type Scope } from '../../shared/scope.js';
import type { AuditService } from '../audit/index.js';
import { Tier } from '../identity/user.entity.js';
import { formatMicros, toMicros, type Micros } from './money.js';
import { UsagePeriod } from './usage-counter.entity.js';

/** Seed 002's monthly message limits by membership tier. */
export const TIER_MONTHLY_MESSAGES: Record<Tier, number> = { [Tier.BASIC]: 50, [Tier.PREMIUM]: 200, [Tier.VIP]: 1000 };

export interface Limits {
  requestsPerHour: number;
  dailyTokenLimit: number;
  monthlyTokenLimit: number;
  monthlyMessageLimit: number;
  /** null: no cost limit. */
  dailyCostLimit: Micros | null;
  monthlyCostLimit: Micros | null;
}

export type Periods = Record<UsagePeriod, Date>;

const formats = new Map<string, Intl.DateTimeFormat>();

/** The wall-clock fields of `at` in time zone `tz`. */
function wallClock(at: Date, tz: string) {
  let f = formats.get(tz);
  if (!f)
    formats.set(
      tz,
      (f = new Intl.DateTimeFormat('en-US', {
        timeZone: tz,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      })),
    );
  const p = Object.fromEntries(f.formatToParts(at).map((x) => [x.type, Number(x.value)])) as Record<string, number>;
  return { y: p.year!, m: p.month! - 1, d: p.day!, h: p.hour!, mi: p.minute!, s: p.second! };
}

/** The instant at which the wall clock of `tz` shows y-m-d h:00 (the zone's offset then, DST included). */
function instantOf(y: number, m: number, d: number, h: number, tz: string): Date {
  const wall = Date.UTC(y, m, d, h);
  const offset = (t: number) => {
    const w = wallClock(new Date(t), tz);
    return Date.UTC(w.y, w.m, w.d, w.h, w.mi, w.s) - Math.floor(t / 1000) * 1000;
  };
  let t = wall - offset(wall);
  t = wall - offset(t);
  return new Date(t);
}

/** The minute `at` falls in: the window of a key's requests-per-minute limit (the same in every time zone). */
export const minuteAt = (at: Date) => new Date(Math.floor(at.getTime() / 60_000) * 60_000);

/**
 * The hour, day and month `at` falls in, in the organisation's time zone (default UTC):
 * budgets reset at its midnight and on the first of its months, at predictable times.
 */
export function periodsAt(at: Date, tz = 'UTC'): Periods {
  if (tz === 'UTC') {
    const y = at.getUTCFullYear();
    const m = at.getUTCMonth();
    return {
      [UsagePeriod.HOUR]: new Date(Date.UTC(y, m, at.getUTCDate(), at.getUTCHours())),
      [UsagePeriod.DAY]: new Date(Date.UTC(y, m, at.getUTCDate())),
      [UsagePeriod.MONTH]: new Date(Date.UTC(y, m, 1)),
    };
  }
  const w = wallClock(at, tz);
  return {
    [UsagePeriod.HOUR]: instantOf(w.y, w.m, w.d, w.h, tz),
    [UsagePeriod.DAY]: instantOf(w.y, w.m, w.d, 0, tz),
    [UsagePeriod.MONTH]: instantOf(w.y, w.m, 1, 0, tz),
  };
}

/** The start of the period after the one `start` begins, in the same zone (for Retry-After). */
function nextStart(period: 'DAY' | 'MONTH', at: Date, tz: string): Date {
  const probe = new Date(periodsAt(at, tz)[period].getTime() + (period === 'DAY' ? 26 : 32 * 24) * 3600_000);
  return periodsAt(probe, tz)[period];
}

/**
 * A budget beyond the user's own, checked and charged with it in the same transaction:
 * a virtual key's, a project's, the organisation's. `subject` names its counters.
 */
export interface BudgetSubject {
  /** `key:<id>`, `project:<id>` or `organisation`. */
  subject: string;
  /** How a refusal names the limit: key, project, organisation. */
  level: 'key' | 'project' | 'organisation';
  dailyCost?: Micros | null;
  monthlyCost?: Micros | null;
  dailyTokens?: number | null;
  requestsPerMinute?: number | null;
}

/** A cost limit at one level and period, and what is spent (reserved included) against it. */
export interface BudgetState {
  level: 'user' | BudgetSubject['level'];
  /** `user`, or the budget subject (`key:<id>`, `project:<id>`, `organisation`). */
  subject: string;
  period: 'DAY' | 'MONTH';
  limit: Micros;
  spent: Micros;
}

export interface Reservation {
  id: string;
  userId: string;
  /** The budget subjects (beyond the user) this reservation holds, and its minute (requests per minute). */
  subjects: string[];
  minute: Date;
  tokens: number;
  cost: Micros;
  periods: Periods;
  /** Every cost limit the call counts against, with its spend once this call was reserved (cost alerts, the remaining-budget headers). */
  budgets: BudgetState[];
}

interface BudgetCounterRow {
  subject: string;
  period: string;
  requests: number;
  tokens: string;
  cost_usd: string;
  reserved_requests: number;
  reserved_tokens: string;
  reserved_cost_usd: string;
}

interface CounterRow {
  period: UsagePeriod;
  requests: number;
  tokens: string;
  cost_usd: string;
  reserved_requests: number;
  reserved_tokens: string;
  reserved_cost_usd: string;
}

/** What a sent call's reservation keeps, to record the call if its instance is lost (stored text only: NULs escaped). */
export interface SentCall {
  providerId: string;
  provider: string;
  model: string;
  keySource: string;
  prompt: string;
  systemMessage: string | null;
  taskId: string | null;
  projectId: string | null;
  conversationId: string | null;
  agentType: string | null;
  requestId: string | null;
  ip: string | null;
  userAgent: string | null;
  /** The reserved tokens and their price, input and output apart (decimal dollars). */
  inputTokens: number;
  outputTokens: number;
  inputCost: string;
  outputCost: string;
}

/** How a sent call whose instance died is logged. */
const INSTANCE_LOST =
  'instance lost: the call was sent to the provider and never settled; charged at its reserved amount';
const PERIOD_KEYS = [UsagePeriod.HOUR, UsagePeriod.DAY, UsagePeriod.MONTH] as const;

/**
 * Quotas (seeds 000, 002, 004), enforced by reservation. Before a call, its worst case
 * (one request, one message, an upper bound of its tokens and their price) is checked
 * against the user's limits and reserved on the user's usage counters, under the
 * counters' row locks: concurrent calls of one user take turns for the few
 * milliseconds a reservation takes, so of 50 calls at the edge of a budget exactly
 * the affordable ones are admitted. After the call the reservation is settled to the
 * actual usage (never more than reserved), or released if the call failed.
 */
export class QuotaService {
  constructor(private readonly deps: { config: Config; audit: AuditService }) {}

  async limitsOf(em: EntityManager, userId: string): Promise<Limits> {
    const { config } = this.deps;
    const [row] = await em.execute<
      {
        tier: Tier;
        requests_per_hour: number | null;
        daily_token_limit: string | null;
        monthly_token_limit: string | null;
        monthly_message_limit: number | null;
        daily_cost_limit_usd: string | null;
        monthly_cost_limit_usd: string | null;
      }[]
    >(
      `SELECT u.tier, q.requests_per_hour, q.daily_token_limit, q.monthly_token_limit, q.monthly_message_limit, q.daily_cost_limit_usd, q.monthly_cost_limit_usd
         FROM users u LEFT JOIN user_quotas q ON q.user_id = u.id WHERE u.id = ?`,
      [userId],
    );
    const cost = (v: string | null | undefined) => (v == null ? null : toMicros(v));
    return {
      requestsPerHour: row?.requests_per_hour ?? config.DEFAULT_REQUESTS_PER_HOUR,
      dailyTokenLimit: Number(row?.daily_token_limit ?? config.DEFAULT_DAILY_TOKEN_LIMIT),
      monthlyTokenLimit: Number(row?.monthly_token_limit ?? config.DEFAULT_MONTHLY_TOKEN_LIMIT),
      monthlyMessageLimit: row?.monthly_message_limit ?? TIER_MONTHLY_MESSAGES[row?.tier ?? Tier.BASIC],
      dailyCostLimit: cost(row?.daily_cost_limit_usd) ?? cost(config.DEFAULT_DAILY_COST_LIMIT_USD),
      monthlyCostLimit: cost(row?.monthly_cost_limit_usd) ?? cost(config.DEFAULT_MONTHLY_COST_LIMIT_USD),
    };
  }

  /** Reserves a call's worst case, or throws RATE_LIMITED / QUOTA_EXCEEDED naming the limit. Commits on its own. */
  async reserve(
    em: EntityManager,
    userId: string,
    tokens: number,
    cost: Micros,
    now = new Date(),
    opts: { budgets?: BudgetSubject[]; projectId?: string | null } = {},
  ): Promise<Reservation> {
    const tz = this.deps.config.ORGANISATION_TIME_ZONE;
    const periods = periodsAt(now, tz);
    const minute = minuteAt(now);
    const limits = await this.limitsOf(em, userId);
    const budgets = [...(opts.budgets ?? []), ...(await this.sharedBudgets(em, opts.projectId))];
    return inTransaction(em, async (t) => {
      await t.execute(
        `INSERT INTO usage_counters (user_id, period, period_start) VALUES (?, 'HOUR', ?), (?, 'DAY', ?), (?, 'MONTH', ?) ON CONFLICT DO NOTHING`,
        [userId, periods.HOUR, userId, periods.DAY, userId, periods.MONTH],
      );
      const rows = await t.execute<CounterRow[]>(
        `SELECT period, requests, tokens, cost_usd, reserved_requests, reserved_tokens, reserved_cost_usd FROM usage_counters
          WHERE user_id = ? AND ((period = 'HOUR' AND period_start = ?) OR (period = 'DAY' AND period_start = ?) OR (period = 'MONTH' AND period_start = ?))
          ORDER BY period FOR UPDATE`,
        [userId, periods.HOUR, periods.DAY, periods.MONTH],
      );
      const states = this.checkUserLimits(
        Object.fromEntries(rows.map((r) => [r.period, r])) as Record<UsagePeriod, CounterRow>,
        limits,
        { tokens, cost, now, periods },
      );
      if (budgets.length)
        states.push(...(await this.reserveBudgets(t, budgets, periods, minute, tokens, cost, now, tz)));

      await t.execute(
        `UPDATE usage_counters SET reserved_requests = reserved_requests + 1, reserved_tokens = reserved_tokens + ?, reserved_cost_usd = reserved_cost_usd + ?::numeric
          WHERE user_id = ? AND ((period = 'HOUR' AND period_start = ?) OR (period = 'DAY' AND period_start = ?) OR (period = 'MONTH' AND period_start = ?))`,
        [tokens, formatMicros(cost), userId, periods.HOUR, periods.DAY, periods.MONTH],
      );
      const id = newId();
      const subjects = budgets.map((b) => b.subject);
      await t.execute(
        `INSERT INTO quota_reservations (id, user_id, tokens, cost_usd, periods, subjects, expires_at) VALUES (?, ?, ?, ?::numeric, ?, ?, now() + make_interval(secs => ?))`,
        [
          id,
          userId,
          tokens,
          formatMicros(cost),
          JSON.stringify({ ...periods, MINUTE: minute }),
          JSON.stringify(subjects),
          this.deps.config.RESERVATION_TTL_SECONDS,
        ],
      );
      return { id, userId, tokens, cost, periods, subjects, minute, budgets: states };
    });
  }

  /**
   * The user's limits against the counters (locked by the caller) once this call's worst case
   * is added: throws the first one broken (RATE_LIMITED, QUOTA_EXCEEDED naming it, with when
   * it resets); returns the user's cost limits with that spend.
   */
  private checkUserLimits(
    c: Record<UsagePeriod, CounterRow>,
    limits: Limits,
    call: { tokens: number; cost: Micros; now: Date; periods: Periods },
  ): BudgetState[] {
    const { tokens, cost, now, periods } = call;
    const tz = this.deps.config.ORGANISATION_TIME_ZONE;
    const requests = (p: UsagePeriod) => c[p].requests + c[p].reserved_requests;
    const used = (p: UsagePeriod) => BigInt(c[p].tokens) + BigInt(c[p].reserved_tokens);
    const spent = (p: UsagePeriod) => toMicros(c[p].cost_usd) + toMicros(c[p].reserved_cost_usd);

    if (requests(UsagePeriod.HOUR) + 1 > limits.requestsPerHour) {
      throw new RateLimitedError(`At most ${limits.requestsPerHour} AI requests per hour`, {
        limit: 'requestsPerHour',
        max: limits.requestsPerHour,
        retryAfter: new Date(periods.HOUR.getTime() + 3600_000).toISOString(),
      });
    }
    const refuse = (limit: string, max: string | number, message: string) => {
      const period = /^monthly/.test(limit) ? 'MONTH' : 'DAY';
      throw new QuotaExceededError(message, { limit, max, retryAfter: nextStart(period, now, tz).toISOString() });
    };
    if (requests(UsagePeriod.MONTH) + 1 > limits.monthlyMessageLimit)
      refuse(
        'monthlyMessageLimit',
        limits.monthlyMessageLimit,
        `The monthly limit of ${limits.monthlyMessageLimit} messages is reached`,
      );
    if (used(UsagePeriod.DAY) + BigInt(tokens) > BigInt(limits.dailyTokenLimit))
      refuse(
        'dailyTokenLimit',
        limits.dailyTokenLimit,
        `This call could exceed the daily limit of ${limits.dailyTokenLimit} tokens`,
      );
    if (used(UsagePeriod.MONTH) + BigInt(tokens) > BigInt(limits.monthlyTokenLimit))
      refuse(
        'monthlyTokenLimit',
        limits.monthlyTokenLimit,
        `This call could exceed the monthly limit of ${limits.monthlyTokenLimit} tokens`,
      );
    if (limits.dailyCostLimit !== null && spent(UsagePeriod.DAY) + cost > limits.dailyCostLimit)
      refuse(
        'dailyCostLimitUsd',
        formatMicros(limits.dailyCostLimit),
        `This call could exceed the daily cost limit of $${formatMicros(limits.dailyCostLimit)}`,
      );
    if (limits.monthlyCostLimit !== null && spent(UsagePeriod.MONTH) + cost > limits.monthlyCostLimit)
      refuse(
        'monthlyCostLimitUsd',
        formatMicros(limits.monthlyCostLimit),
        `This call could exceed the monthly cost limit of $${formatMicros(limits.monthlyCostLimit)}`,
      );

    const states: BudgetState[] = [];
    for (const [period, limit] of [
      ['DAY', limits.dailyCostLimit],
      ['MONTH', limits.monthlyCostLimit],
    ] as const)
      if (limit !== null)
        states.push({ level: 'user', subject: 'user', period, limit, spent: spent(UsagePeriod[period]) + cost });
    return states;
  }

  /**
   * Marks a reservation's call as sent, just before the provider is asked, with what the
   * expiry job records of it should this instance die before settling. Commits on its own.
   */
  async markSent(em: EntityManager, r: Reservation, call: SentCall): Promise<void> {
    await em.execute(`UPDATE quota_reservations SET sent_at = now(), call = ?::jsonb WHERE id = ?`, [
      JSON.stringify(call),
      r.id,
    ]);
  }

  /** Gives a failed or aborted call's reservation back. */
  async release(em: EntityManager, r: Reservation): Promise<void> {
    await inTransaction(em, async (t) => {
      if (await this.take(t, r))
        await this.unreserve(t, r.userId, { ...r.periods, MINUTE: r.minute }, r.tokens, r.cost, r.subjects);
    });
  }

  /**
   * Reservations of calls that never settled (an instance died mid-call), past their
   * expiry: a never-sent call's is released; a sent call is settled at its reserved amount
   * (the provider may have served it in full) and logged ERROR "instance lost", with its
   * cost record and daily usage. A job, once across instances.
   */
  async releaseExpired(em: EntityManager): Promise<{ released: number; settled: number }> {
    return inTransaction(em, async (t) => {
      const rows = await t.execute<
        {
          id: string;
          user_id: string;
          tokens: number;
          cost_usd: string;
          periods: Periods;
          subjects: string[] | null;
          sent_at: Date | null;
          call: SentCall | null;
        }[]
      >(
        `DELETE FROM quota_reservations WHERE id IN (SELECT id FROM quota_reservations WHERE expires_at < now() ORDER BY user_id LIMIT 1000 FOR UPDATE SKIP LOCKED)
         RETURNING id, user_id, tokens, cost_usd, periods, subjects, sent_at, call`,
      );
      let settled = 0;
      for (const r of rows) {
        if (!r.sent_at || !r.call) {
          await this.unreserve(t, r.user_id, r.periods, r.tokens, toMicros(r.cost_usd), r.subjects ?? []);
          continue;
        }
        await this.settleLost(t, r.user_id, r.periods, r.tokens, toMicros(r.cost_usd), r.call);
        await this.moveBudgets(
          t,
          r.subjects ?? [],
          r.periods,
          { tokens: r.tokens, cost: toMicros(r.cost_usd) },
          { tokens: r.tokens, cost: toMicros(r.cost_usd) },
        );
        settled++;
      }
      return { released: rows.length - settled, settled };
    });
  }

  private async settleLost(
    em: EntityManager,
    userId: string,
    periods: Periods | Record<string, string>,
    tokens: number,
    cost: Micros,
    c: SentCall,
  ) {
    const p = (k: UsagePeriod) => new Date(periods[k] as string | Date);
    await this.lockCounters(em, userId, periods);
    await em.execute(
      `UPDATE usage_counters SET requests = requests + 1, messages = messages + 1, tokens = tokens + ?, cost_usd = cost_usd + ?::numeric,
              reserved_requests = reserved_requests - 1, reserved_tokens = reserved_tokens - ?, reserved_cost_usd = reserved_cost_usd - ?::numeric
        WHERE user_id = ? AND ((period = 'HOUR' AND period_start = ?) OR (period = 'DAY' AND period_start = ?) OR (period = 'MONTH' AND period_start = ?))`,
      [tokens, formatMicros(cost), tokens, formatMicros(cost), userId, ...PERIOD_KEYS.map(p)],
    );
    await this.recordLost(em, userId, cost, c);
  }

  /** A lost call's prompt log (ERROR, instance lost), cost record and daily usage, at its reserved amount. */
  private async recordLost(em: EntityManager, userId: string, cost: Micros, c: SentCall) {
    const logId = newId();
    await em.execute(
      `INSERT INTO prompt_logs (id, user_id, task_id, project_id, conversation_id, provider_id, agent_type, prompt, system_message, model, prompt_tokens, completion_tokens, total_tokens,
                                cost_usd, key_source, ip, user_agent, request_id, status, error_message)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?::numeric, ?, ?::inet, ?, ?, 'ERROR', ?)`,
      [
        logId,
        userId,
        c.taskId,
        c.projectId,
        c.conversationId,
        c.providerId,
        c.agentType,
        c.prompt,
        c.systemMessage,
        c.model,
        c.inputTokens,
        c.outputTokens,
        c.inputTokens + c.outputTokens,
        formatMicros(cost),
        c.keySource,
        c.ip,
        c.userAgent,
        c.requestId,
        INSTANCE_LOST,
      ],
    );
    await em.execute(
      `INSERT INTO cost_records (id, user_id, project_id, conversation_id, agent_type, provider_id, provider, model, input_tokens, output_tokens, input_cost, output_cost, total_cost, prompt_log_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?::numeric, ?::numeric, ?::numeric, ?)`,
      [
        newId(),
        userId,
        c.projectId,
        c.conversationId,
        c.agentType,
        c.providerId,
        c.provider,
        c.model,
        c.inputTokens,
        c.outputTokens,
        c.inputCost,
        c.outputCost,
        formatMicros(cost),
        logId,
      ],
    );
    await em.execute(
      `INSERT INTO usage_daily (id, user_id, provider, model, date, requests, tokens_in, tokens_out, cost_usd)
       VALUES (?, ?, ?, ?, (now() AT TIME ZONE ?)::date, 1, ?, ?, ?::numeric)
       ON CONFLICT (user_id, provider, model, date) DO UPDATE SET requests = usage_daily.requests + 1,
         tokens_in = usage_daily.tokens_in + EXCLUDED.tokens_in, tokens_out = usage_daily.tokens_out + EXCLUDED.tokens_out,
         cost_usd = usage_daily.cost_usd + EXCLUDED.cost_usd`,
      [
        newId(),
        userId,
        c.provider,
        c.model,
        this.deps.config.ORGANISATION_TIME_ZONE,
        c.inputTokens,
        c.outputTokens,
        formatMicros(cost),
      ],
    );
  }

  /**
   * Locks the user's counter rows of these periods in one order (HOUR, DAY, MONTH: the
   * enum's order), as `reserve` does: every writer of a user's counters takes them the
   * same way, so concurrent calls of one user queue instead of deadlocking.
   */
  private async lockCounters(em: EntityManager, userId: string, periods: Periods | Record<string, string | Date>) {
    const p = (k: UsagePeriod) => new Date(periods[k] as string | Date);
    await em.execute(
      `SELECT 1 FROM usage_counters
        WHERE user_id = ? AND ((period = 'HOUR' AND period_start = ?) OR (period = 'DAY' AND period_start = ?) OR (period = 'MONTH' AND period_start = ?))
        ORDER BY period FOR UPDATE`,
      [userId, ...PERIOD_KEYS.map(p)],
    );
  }

  /** Deletes the reservation row; false when the expiry job already released it. */
  private async take(em: EntityManager, r: Reservation): Promise<boolean> {
    const rows = await em.execute(`DELETE FROM quota_reservations WHERE id = ? RETURNING id`, [r.id]);
    return rows.length === 1;
  }

  private async unreserve(
    em: EntityManager,
    userId: string,
    periods: Periods | Record<string, string | Date>,
    tokens: number,
    cost: Micros,
    subjects: string[] = [],
  ) {
    const p = (k: UsagePeriod) => new Date(periods[k] as string | Date);
    await this.lockCounters(em, userId, periods);
    await em.execute(
      `UPDATE usage_counters SET reserved_requests = reserved_requests - 1, reserved_tokens = reserved_tokens - ?, reserved_cost_usd = reserved_cost_usd - ?::numeric
        WHERE user_id = ? AND ((period = 'HOUR' AND period_start = ?) OR (period = 'DAY' AND period_start = ?) OR (period = 'MONTH' AND period_start = ?))`,
      [tokens, formatMicros(cost), userId, ...PERIOD_KEYS.map(p)],
    );
    await this.moveBudgets(em, subjects, periods, null, { tokens, cost });
  }

  /** The organisation's budget (settings), if it has one: every call counts against it. */
  organisationBudgets(): BudgetSubject[] {
    const c = this.deps.config;
    if (!c.ORGANISATION_DAILY_COST_LIMIT_USD && !c.ORGANISATION_MONTHLY_COST_LIMIT_USD) return [];
    return [
      {
        subject: 'organisation',
        level: 'organisation',
        dailyCost: c.ORGANISATION_DAILY_COST_LIMIT_USD ? toMicros(c.ORGANISATION_DAILY_COST_LIMIT_USD) : null,
        monthlyCost: c.ORGANISATION_MONTHLY_COST_LIMIT_USD ? toMicros(c.ORGANISATION_MONTHLY_COST_LIMIT_USD) : null,
      },
    ];
  }

  /** The project's and the organisation's budgets that apply to a call, if any. */
  private async sharedBudgets(em: EntityManager, projectId?: string | null): Promise<BudgetSubject[]> {
    const out = this.organisationBudgets();
    if (projectId) {
      const [b] = await em.execute<{ daily: string | null; monthly: string | null }[]>(
        `SELECT daily_cost_limit_usd AS daily, monthly_cost_limit_usd AS monthly FROM project_budgets WHERE project_id = ?`,
        [projectId],
      );
      if (b && (b.daily !== null || b.monthly !== null))
        out.push({
          subject: `project:${projectId}`,
          level: 'project',
          dailyCost: b.daily === null ? null : toMicros(b.daily),
          monthlyCost: b.monthly === null ? null : toMicros(b.monthly),
        });
    }
    return out;
  }

  /**
   * Checks and reserves a call's worst case on every budget subject's counters (minute,
   * day, month), under their row locks, taken after the user's and in one order (subject,
   * period) by every writer: the first limit hit refuses the call and nothing is reserved.
   * Returns the budgets' cost limits with their spend once this call is reserved.
   */
  private async reserveBudgets(
    t: EntityManager,
    budgets: BudgetSubject[],
    periods: Periods,
    minute: Date,
    tokens: number,
    cost: Micros,
    now: Date,
    tz: string,
  ): Promise<BudgetState[]> {
    const keys = budgets.flatMap(
      (b) =>
        [
          [b.subject, 'MINUTE', minute],
          [b.subject, 'DAY', periods.DAY],
          [b.subject, 'MONTH', periods.MONTH],
        ] as const,
    );
    const tuples = keys.map(() => '(?, ?, ?::timestamptz)').join(', ');
    const values = keys.flat();
    await t.execute(
      `INSERT INTO budget_counters (subject, period, period_start) VALUES ${tuples} ON CONFLICT DO NOTHING`,
      values,
    );
    const rows = await t.execute<BudgetCounterRow[]>(
      `SELECT subject, period, requests, tokens, cost_usd, reserved_requests, reserved_tokens, reserved_cost_usd FROM budget_counters
        WHERE (subject, period, period_start) IN (${tuples}) ORDER BY subject, period FOR UPDATE`,
      values,
    );
    const row = (subject: string, period: string) => rows.find((r) => r.subject === subject && r.period === period)!;
    const states = budgets.flatMap((b) =>
      this.checkBudget(
        b,
        { minute: row(b.subject, 'MINUTE'), day: row(b.subject, 'DAY'), month: row(b.subject, 'MONTH') },
        {
          tokens,
          cost,
          now,
          tz,
          minute,
        },
      ),
    );
    await t.execute(
      `UPDATE budget_counters SET reserved_requests = reserved_requests + 1, reserved_tokens = reserved_tokens + ?, reserved_cost_usd = reserved_cost_usd + ?::numeric
        WHERE (subject, period, period_start) IN (${tuples})`,
      [tokens, formatMicros(cost), ...values],
    );
    return states;
  }

  /** One budget's limits against its counters (locked by the caller) once the call's worst case is added; throws the first broken. */
  private checkBudget(
    b: BudgetSubject,
    counters: Record<'minute' | 'day' | 'month', BudgetCounterRow>,
    call: { tokens: number; cost: Micros; now: Date; tz: string; minute: Date },
  ): BudgetState[] {
    const { tokens, cost, now, tz, minute } = call;
    const { minute: m, day: d, month: mo } = counters;
    const states: BudgetState[] = [];
    if (b.requestsPerMinute != null && m.requests + m.reserved_requests + 1 > b.requestsPerMinute) {
      throw new RateLimitedError(`At most ${b.requestsPerMinute} AI requests per minute for this ${b.level}`, {
        limit: `${b.level}RequestsPerMinute`,
        max: b.requestsPerMinute,
        retryAfter: new Date(minute.getTime() + 60_000).toISOString(),
      });
    }
    const refuse = (limit: string, max: string | number, message: string, period: 'DAY' | 'MONTH') => {
      throw new QuotaExceededError(message, { limit, max, retryAfter: nextStart(period, now, tz).toISOString() });
    };
    if (b.dailyTokens != null && BigInt(d.tokens) + BigInt(d.reserved_tokens) + BigInt(tokens) > BigInt(b.dailyTokens))
      refuse(
        `${b.level}DailyTokenLimit`,
        b.dailyTokens,
        `This call could exceed the ${b.level}'s daily limit of ${b.dailyTokens} tokens`,
        'DAY',
      );
    if (b.dailyCost != null && toMicros(d.cost_usd) + toMicros(d.reserved_cost_usd) + cost > b.dailyCost)
      refuse(
        `${b.level}DailyCostLimitUsd`,
        formatMicros(b.dailyCost),
        `This call could exceed the ${b.level}'s daily cost limit of $${formatMicros(b.dailyCost)}`,
        'DAY',
      );
    if (b.monthlyCost != null && toMicros(mo.cost_usd) + toMicros(mo.reserved_cost_usd) + cost > b.monthlyCost)
      refuse(
        `${b.level}MonthlyCostLimitUsd`,
        formatMicros(b.monthlyCost),
        `This call could exceed the ${b.level}'s monthly cost limit of $${formatMicros(b.monthlyCost)}`,
        'MONTH',
      );
    for (const [period, r, limit] of [
      ['DAY', d, b.dailyCost],
      ['MONTH', mo, b.monthlyCost],
    ] as const)
      if (limit != null)
        states.push({
          level: b.level,
          subject: b.subject,
          period,
          limit,
          spent: toMicros(r.cost_usd) + toMicros(r.reserved_cost_usd) + cost,
        });
    return states;
  }

  /**
   * A reservation's budget subjects: `add` becomes usage (null: none, a release), `reserved`
   * stops being reserved. Locks in the same order as reserveBudgets.
   */
  private async moveBudgets(
    em: EntityManager,
    subjects: string[],
    periods: Periods | Record<string, string | Date>,
    add: { tokens: number; cost: Micros } | null,
    reserved: { tokens: number; cost: Micros },
  ) {
    if (!subjects.length) return;
    const at = (k: string) => new Date(periods[k as keyof typeof periods] as string | Date);
    const where = `subject = ANY(?::text[]) AND ((period = 'MINUTE' AND period_start = ?) OR (period = 'DAY' AND period_start = ?) OR (period = 'MONTH' AND period_start = ?))`;
    const list = `{${subjects.map((x) => `"${x}"`).join(',')}}`;
    const params = [list, at('MINUTE'), at('DAY'), at('MONTH')];
    await em.execute(`SELECT 1 FROM budget_counters WHERE ${where} ORDER BY subject, period FOR UPDATE`, params);
    await em.execute(
      `UPDATE budget_counters SET requests = requests + ?, tokens = tokens + ?, cost_usd = cost_usd + ?::numeric,
              reserved_requests = reserved_requests - 1, reserved_tokens = reserved_tokens - ?, reserved_cost_usd = reserved_cost_usd - ?::numeric
        WHERE ${where}`,
      [
        add ? 1 : 0,
        add?.tokens ?? 0,
        formatMicros(add?.cost ?? 0n),
        reserved.tokens,
        formatMicros(reserved.cost),
        ...params,
      ],
    );
  }

  /** A user's usage in the current DAY or MONTH, with the limits that apply. */
  async usage(em: EntityManager, userId: string, period: UsagePeriod.DAY | UsagePeriod.MONTH, now = new Date()) {
    const start = periodsAt(now, this.deps.config.ORGANISATION_TIME_ZONE)[period];
    const [row] = await em.execute<{ requests: number; tokens: string; cost_usd: string; reserved_requests: number }[]>(
      `SELECT requests, tokens, cost_usd, reserved_requests FROM usage_counters WHERE user_id = ? AND period = ? AND period_start = ?`,
      [userId, period, start],
    );
    const limits = await this.limitsOf(em, userId);
    const daily = period === UsagePeriod.DAY;
    const costLimit = daily ? limits.dailyCostLimit : limits.monthlyCostLimit;
    return {
      period,
      periodStart: start,
      requests: row?.requests ?? 0,
      inFlight: row?.reserved_requests ?? 0,
      tokens: Number(row?.tokens ?? 0),
      costUsd: formatMicros(toMicros(row?.cost_usd ?? '0')),
      tokenLimit: daily ? limits.dailyTokenLimit : limits.monthlyTokenLimit,
      messageLimit: daily ? null : limits.monthlyMessageLimit,
      costLimitUsd: costLimit === null ? null : formatMicros(costLimit),
    };
  }

  /** Admin: a user's overrides (null clears one back to the default). */
  async setUserQuota(
    scope: Scope,
    input: {
      userId: string;
      requestsPerHour?: number | null;
      dailyTokenLimit?: number | null;
      monthlyTokenLimit?: number | null;
      monthlyMessageLimit?: number | null;
      dailyCostLimitUsd?: string | null;
      monthlyCostLimitUsd?: string | null;
    },
  ) {
    const money = (v: string | null | undefined, field: string) =>
      v == null ? null : formatMicros(toMicros(v, field));
    return inTransaction(scope, async (tx) => {
      const [before] = await tx.em.execute(`SELECT * FROM user_quotas WHERE user_id = ?`, [input.userId]);
      const values = [
        input.requestsPerHour ?? null,
        input.dailyTokenLimit ?? null,
        input.monthlyTokenLimit ?? null,
        input.monthlyMessageLimit ?? null,
        money(input.dailyCostLimitUsd, 'dailyCostLimitUsd'),
        money(input.monthlyCostLimitUsd, 'monthlyCostLimitUsd'),
      ];
      const [row] = await tx.em.execute(
        `INSERT INTO user_quotas (user_id, requests_per_hour, daily_token_limit, monthly_token_limit, monthly_message_limit, daily_cost_limit_usd, monthly_cost_limit_usd, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, now())
         ON CONFLICT (user_id) DO UPDATE SET requests_per_hour = EXCLUDED.requests_per_hour, daily_token_limit = EXCLUDED.daily_token_limit,
           monthly_token_limit = EXCLUDED.monthly_token_limit, monthly_message_limit = EXCLUDED.monthly_message_limit,
           daily_cost_limit_usd = EXCLUDED.daily_cost_limit_usd, monthly_cost_limit_usd = EXCLUDED.monthly_cost_limit_usd, updated_at = now()
         RETURNING user_id AS "user", requests_per_hour AS "requestsPerHour", daily_token_limit::int AS "dailyTokenLimit", monthly_token_limit::int AS "monthlyTokenLimit",
           monthly_message_limit AS "monthlyMessageLimit", daily_cost_limit_usd AS "dailyCostLimitUsd", monthly_cost_limit_usd AS "monthlyCostLimitUsd", updated_at AS "updatedAt"`,
        [input.userId, ...values],
      );
      this.deps.audit.record(tx, {
        action: 'quota.set',
        entityType: 'User',
        entityId: input.userId,
        before: before ?? null,
        after: row,
      });
      // Raw rows carry timestamps as text; the DateTime scalar takes a Date.
      return { ...(row as Record<string, unknown>), updatedAt: new Date(row.updatedAt as string) };
    });
  }
}
