import { pino } from 'pino';
import sql from 'sql-template-tag';

import type { SqlClient } from '../../db/sql.js';
import { paginate, type Connection, type PageArgs } from '../../shared/connection.js';
import { isUuid } from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import type { Logger } from '../../shared/logger.js';
import { and, contains, readModel } from '../../shared/read-model.js';
import { storableDeep } from '../../shared/storable-text.js';
import type { SystemLogWhere } from './audit.inputs.js';
import { SYSTEM_LOG_LEVELS, SystemLog, SystemLogLevel } from './system-log.entity.js';

export type CaptureLevel = 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'off';

const PINO_VALUE: Record<Exclude<CaptureLevel, 'off'>, number> = {
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
};

function levelOf(value: number): SystemLogLevel {
  if (value >= 60) return SystemLogLevel.CRITICAL;
  if (value >= 50) return SystemLogLevel.ERROR;
  if (value >= 40) return SystemLogLevel.WARNING;
  if (value >= 30) return SystemLogLevel.INFO;
  return SystemLogLevel.DEBUG;
}

/** What a log line becomes in system_logs. */
interface Entry {
  id: string;
  created_at: string;
  level: SystemLogLevel;
  module: string | null;
  message: string;
  context: Record<string, unknown> | null;
  request_id: string | null;
  user_id: string | null;
}

/** Fields of a pino line that have columns of their own, or that say nothing (pid, hostname, service). */
const OWN_FIELDS = new Set([
  'level',
  'time',
  'pid',
  'hostname',
  'service',
  'msg',
  'module',
  'requestId',
  'reqId',
  'userId',
]);
/** A line's context larger than this (JSON characters) is kept as a truncated preview. */
const MAX_CONTEXT = 16_384;

export interface SystemLogOptions {
  /** Lines at or above this level are kept (default warn; off keeps nothing). */
  level: CaptureLevel;
  /** Lines held in memory at most while the database is slow or away; more are dropped, counted in `dropped`. Default 1000. */
  maxBuffered?: number;
  /** A batch is written at most this long after its first line (ms; default 250). */
  flushMs?: number;
  /** ...or as soon as it has this many lines (default 100). */
  batchSize?: number;
}

const CAPTURED = Symbol('steward.systemLogCapture');

/**
 * The server's warnings and errors, kept in system_logs for admins.
 *
 * `capture(logger)` tees the logger's destination: pino hands every line, already
 * serialised and redacted, to a stream that forwards it unchanged to the original
 * destination (when the operator's LOG_LEVEL wants it) and queues it here when it is at
 * or above SYSTEM_LOG_LEVEL. Child loggers share their root's destination, so every
 * module's lines pass through. Writing is asynchronous and batched (one INSERT per
 * batch), never blocks the logging call, and never logs itself: text PostgreSQL cannot
 * store is kept escaped, a failed batch is retried line by line and what still fails is
 * dropped and counted, so a database outage cannot turn into a loop of log lines.
 */
export class SystemLogService {
  /** Lines dropped because the buffer was full or a batch failed. */
  dropped = 0;
  private buffer: Entry[] = [];
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;
  private readonly maxBuffered: number;
  private readonly flushMs: number;
  private readonly batchSize: number;

  constructor(
    private readonly db: SqlClient,
    private readonly opts: SystemLogOptions,
  ) {
    this.maxBuffered = opts.maxBuffered ?? 1000;
    this.flushMs = opts.flushMs ?? 250;
    this.batchSize = opts.batchSize ?? 100;
  }

  /**
   * Starts keeping the logger's lines (once per logger). Lowers the logger's level to
   * SYSTEM_LOG_LEVEL when LOG_LEVEL is higher (e.g. silent), forwarding to the original
   * destination only what LOG_LEVEL asked for.
   */
  capture(logger: Logger): void {
    if (this.opts.level === 'off') return;
    const target = logger as unknown as Record<symbol, unknown>;
    if (target[CAPTURED]) return;
    target[CAPTURED] = true;
    const min = PINO_VALUE[this.opts.level];
    const original = target[pino.symbols.streamSym] as pino.DestinationStream & Record<string | symbol, unknown>;
    const outputFrom = logger.levelVal; // what the operator wants printed (Infinity when silent)
    const originalNeedsMetadata = original[pino.symbols.needsMetadataGsym] === true;
    const tee = {
      [pino.symbols.needsMetadataGsym]: true,
      lastLevel: 0,
      lastTime: '',
      lastMsg: '',
      lastObj: {} as object,
      lastLogger: logger,
      write: (line: string) => {
        const level = tee.lastLevel;
        if (level >= outputFrom) {
          if (originalNeedsMetadata)
            Object.assign(original, {
              lastLevel: tee.lastLevel,
              lastTime: tee.lastTime,
              lastMsg: tee.lastMsg,
              lastObj: tee.lastObj,
              lastLogger: tee.lastLogger,
            });
          original.write(line);
        }
        if (level >= min) this.push(line);
      },
      flush: (cb?: (err?: Error) => void) => {
        const f = original.flush as ((cb?: (err?: Error) => void) => void) | undefined;
        if (typeof f === 'function') f.call(original, cb);
        else cb?.();
      },
    };
    target[pino.symbols.streamSym] = tee;
    if (logger.levelVal > min) logger.level = this.opts.level;
  }

  private push(line: string): void {
    let entry: Entry;
    try {
      entry = this.entryOf(JSON.parse(line) as Record<string, unknown>);
    } catch {
      return; // not a JSON line: nothing of ours
    }
    if (this.buffer.length >= this.maxBuffered) {
      this.dropped += 1;
      return;
    }
    this.buffer.push(entry);
    if (this.buffer.length >= this.batchSize) this.schedule(0);
    else this.schedule(this.flushMs);
  }

  private entryOf(line: Record<string, unknown>): Entry {
    const context: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(line)) if (!OWN_FIELDS.has(k)) context[k] = v;
    let kept: Record<string, unknown> | null = Object.keys(context).length ? context : null;
    if (kept) {
      const text = JSON.stringify(kept);
      if (text.length > MAX_CONTEXT) kept = { truncated: true, preview: text.slice(0, MAX_CONTEXT) };
    }
    const str = (v: unknown) => (typeof v === 'string' && v ? v : null);
    const time = typeof line.time === 'number' ? new Date(line.time) : new Date();
    // A line may quote user text PostgreSQL cannot store (a NUL): kept escaped, not lost.
    return storableDeep({
      id: newId(),
      created_at: time.toISOString(),
      level: levelOf(typeof line.level === 'number' ? line.level : 40),
      module: str(line.module) ?? (line.job ? 'jobs' : null),
      message: str(line.msg) ?? '',
      context: kept,
      request_id: str(line.requestId) ?? str(line.reqId),
      user_id: isUuid(line.userId) ? line.userId : null,
    });
  }

  private schedule(ms: number): void {
    if (this.flushing) return; // the running flush reschedules what is left
    if (this.timer && ms > 0) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, ms);
    this.timer.unref();
  }

  /** Writes what is buffered (tests and shutdown may await it). */
  flush(): Promise<void> {
    return (this.flushing ??= (async () => {
      try {
        while (this.buffer.length && !this.db.pool.ending) {
          const batch = this.buffer.splice(0, this.batchSize);
          try {
            await this.insert(batch);
          } catch {
            // One bad line must not cost the batch its other lines: each is tried alone, and only
            // those that still fail are dropped (never logged: that could loop).
            for (const entry of batch) await this.insert([entry]).catch(() => (this.dropped += 1));
          }
        }
        if (this.db.pool.ending) this.buffer.length = 0;
      } finally {
        this.flushing = undefined;
      }
    })());
  }

  private insert(batch: Entry[]) {
    return this.db.query(sql`
      INSERT INTO system_logs (id, created_at, level, module, message, context, request_id, user_id)
      SELECT x.id, x.created_at, x.level::system_log_level, x.module, x.message, x.context, x.request_id, x.user_id
        FROM jsonb_to_recordset(${JSON.stringify(batch)}::jsonb)
          AS x(id uuid, created_at timestamptz, level text, module text, message text, context jsonb, request_id text, user_id uuid)`);
  }

  list(fields: Iterable<string>, where: SystemLogWhere, page: PageArgs): Promise<Connection<Record<string, unknown>>> {
    const atLeast = where.minLevel ? SYSTEM_LOG_LEVELS.slice(SYSTEM_LOG_LEVELS.indexOf(where.minLevel)) : null;
    return paginate(
      this.db,
      {
        model: readModel(SystemLog),
        fields,
        where: and([
          where.levels?.length ? sql`t.level = ANY(${where.levels}::system_log_level[])` : null,
          atLeast ? sql`t.level = ANY(${[...atLeast]}::system_log_level[])` : null,
          where.module ? sql`t.module = ${where.module}` : null,
          where.search?.trim() ? contains('t.message', where.search.trim()) : null,
          where.requestId ? sql`t.request_id = ${where.requestId}` : null,
          where.from ? sql`t.created_at >= ${where.from}::timestamptz` : null,
          where.to ? sql`t.created_at < ${where.to}::timestamptz` : null,
        ]),
        sort: { property: 'createdAt', direction: 'DESC', type: 'timestamptz' },
      },
      page,
    );
  }

  /** Deletes logs older than `days`; returns how many. */
  async removeOlderThan(days: number): Promise<number> {
    const r = await this.db.one<{ n: number }>(sql`
      WITH gone AS (DELETE FROM system_logs WHERE created_at < now() - make_interval(days => ${days}) RETURNING 1)
      SELECT count(*)::int AS n FROM gone`);
    return r?.n ?? 0;
  }
}
