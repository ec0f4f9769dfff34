import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';

import { checkTrustedProxies } from './server/client-ip.js';

/**
 * Every setting Steward reads, from the environment, once, validated at start.
 * A bad value stops the start with a message naming the variable; nothing reads
 * `process.env` anywhere else.
 */
const int = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max).default(def);
const bool = (def: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'])
    .default(def ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1' || v === 'yes');
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === '' ? undefined : v));

const schema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: int(4000, 0, 65535),
  HOST: z.string().default('127.0.0.1'),
  /**
   * Reverse proxies whose X-Forwarded-For is believed, comma-separated: addresses, CIDRs
   * (10.0.0.0/8) or `loopback`, `linklocal`, `uniquelocal`. Empty: the socket's peer is the client.
   */
  TRUSTED_PROXIES: z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean),
    )
    .superRefine((list, ctx) => {
      const bad = checkTrustedProxies(list);
      if (bad) ctx.addIssue({ code: 'custom', message: bad });
    }),
  /** When set, /metrics leaves PORT for a listener of its own on this port (0: any free one), on METRICS_HOST. */
  METRICS_PORT: optionalString.pipe(
    z
      .string()
      .regex(/^\d{1,5}$/, 'must be a port number')
      .transform(Number)
      .pipe(z.number().max(65535))
      .optional(),
  ),
  /** Interface of the METRICS_PORT listener; default HOST. */
  METRICS_HOST: optionalString,
  /** When set, every scrape of /metrics needs `Authorization: Bearer <METRICS_TOKEN>` (at least 16 characters). */
  METRICS_TOKEN: optionalString.pipe(z.string().min(16).optional()),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Where the embedded database and generated development secrets live. */
  STEWARD_HOME: z.string().default('.steward'),
  /** Any PostgreSQL ≥ 13. When absent, an embedded PostgreSQL is started under STEWARD_HOME. */
  DATABASE_URL: optionalString.pipe(z.url().optional()),
  /** Port of the embedded PostgreSQL; never 5432, where a user's own server may run. */
  EMBEDDED_PG_PORT: int(54329, 1024, 65535).refine((p) => p !== 5432, 'must not be 5432'),
  DB_POOL_SIZE: int(10, 1, 200),
  /**
   * The database role the application connects as, arranged at migrate time by
   * DATABASE_URL's user (the schema's owner): `auto` is `<database>_app`; `off` connects
   * as DATABASE_URL's user itself (which can then bypass the audit trail's triggers).
   */
  DATABASE_APP_ROLE: z
    .string()
    .regex(/^(off|auto|[a-z_][a-z0-9_]{0,62})$/, 'auto, off, or a role name (lower-case letters, digits, _)')
    .default('auto'),
  /** Signs access tokens (HS256). At least 32 characters. */
  TOKEN_SIGNING_KEY: optionalString.pipe(z.string().min(32).optional()),
  /** AES-256 key-encryption key for secrets at rest: 32 bytes, base64. */
  ENCRYPTION_MASTER_KEY: optionalString.pipe(
    z
      .string()
      .refine((v) => Buffer.from(v, 'base64').length === 32, 'must be 32 bytes encoded as base64')
      .optional(),
  ),
  /** The version name of ENCRYPTION_MASTER_KEY, stored with every secret it seals (rotation). */
  ENCRYPTION_MASTER_KEY_VERSION: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,32}$/, 'letters, digits, _ and - (at most 32)')
    .default('1'),
  /**
   * Retired master keys still needed to open secrets sealed before a rotation, as
   * `version:base64key,…` (e.g. `1:AAAA…`). `npm run keys:rotate` re-wraps every secret
   * with the current key; after it, the previous keys can be removed.
   */
  ENCRYPTION_PREVIOUS_MASTER_KEYS: z
    .string()
    .default('')
    .transform((v, ctx) => {
      const keys: Record<string, string> = {};
      for (const part of v
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean)) {
        const at = part.indexOf(':');
        const version = part.slice(0, at);
        const key = part.slice(at + 1);
        if (
          at < 1 ||
          !/^[A-Za-z0-9_-]{1,32}$/.test(version) ||
          Buffer.from(key, 'base64').length !== 32 ||
          keys[version]
        ) {
          ctx.addIssue({
            code: 'custom',
            message: 'must be `version:base64key` pairs separated by commas, each key 32 bytes, each version once',
          });
          return z.NEVER;
        }
        keys[version] = key;
      }
      return keys;
    }),
  PUBLIC_URL: optionalString,
  ACCESS_TOKEN_TTL_SECONDS: int(900, 30),
  REFRESH_TOKEN_TTL_SECONDS: int(30 * 24 * 3600, 60),
  /** A session family (a sign-in and all its refreshes) ends this long after the sign-in, however often it is refreshed. */
  SESSION_MAX_LIFETIME_SECONDS: int(90 * 24 * 3600, 60),
  /** Seconds in which a just-rotated refresh token, presented again, answers its successor instead of counting as reuse (two tabs refreshing at once). 0: none. */
  REFRESH_REUSE_GRACE_SECONDS: int(10, 0, 300),
  PASSWORD_RESET_TTL_SECONDS: int(3600, 60),
  /** When false (the default) only the very first user may sign up without an invitation. */
  OPEN_SIGNUP: bool(false),
  ARGON2_MEMORY_KIB: int(19456, 19456),
  ARGON2_TIME_COST: int(2, 2),
  ARGON2_PARALLELISM: int(1, 1, 16),
  /** argon2 hashes computed at once; 100 parallel logins queue instead of taking 100 × 19 MiB. */
  HASH_CONCURRENCY: int(4, 1, 64),
  /** Failures in a row (from any addresses) that lock an account; see LOGIN_IP_MAX_FAILURES, reached first. */
  LOGIN_MAX_FAILURES: int(20, 1),
  LOGIN_LOCK_SECONDS: int(15 * 60, 1),
  /** Failures on one account from one IP address after which that address is refused for that account for LOGIN_LOCK_SECONDS. */
  LOGIN_IP_MAX_FAILURES: int(5, 1),
  /** signUp, login, requestPasswordReset and resetPassword attempts per IP address per hour (each operation counted apart). */
  AUTH_IP_LIMIT_PER_HOUR: int(100, 1),
  /** signUp, requestPasswordReset and resetPassword attempts per account (e-mail) per hour. */
  AUTH_ACCOUNT_LIMIT_PER_HOUR: int(5, 1),
  MAX_QUERY_DEPTH: int(12, 2),
  MAX_QUERY_ALIASES: int(15, 1),
  MAX_QUERY_DIRECTIVES: int(10, 1),
  MAX_QUERY_TOKENS: int(3000, 50),
  MAX_QUERY_COST: int(50000, 10),
  MAX_BODY_BYTES: int(1024 * 1024, 1024),
  WS_MAX_PAYLOAD_BYTES: int(256 * 1024, 1024),
  WS_MAX_SUBSCRIPTIONS: int(100, 1),
  WS_INIT_TIMEOUT_MS: int(5000, 100),
  /** Every socket is pinged this often; one that has not answered by the next ping is dropped. */
  WS_KEEPALIVE_MS: int(12_000, 100),
  /** Subscription messages sent per turn of the event loop (the fan-out yields between batches). */
  WS_SENDS_PER_TURN: int(500, 1),
  /** A socket with more unsent bytes than this is too slow for its subscriptions: closed with 1013, to reconnect and refetch. */
  WS_MAX_BUFFERED_BYTES: int(4 * 1024 * 1024, 1024),
  /** SMTP server for e-mail (password resets, EMAIL notifications), e.g. smtp://user:pass@host:587. */
  SMTP_URL: optionalString,
  MAIL_FROM: z.string().default('Steward <steward@localhost>'),
  /** PUSH and SMS notifications are POSTed here as JSON (a gateway of your choice). */
  NOTIFICATION_WEBHOOK_URL: optionalString.pipe(z.url().optional()),
  /** GET /graphql in a browser: sandbox (Apollo Sandbox, from its CDN), graphiql (bundled, offline), off. Default: sandbox; off in production. */
  GRAPHQL_LANDING_PAGE: z.enum(['sandbox', 'graphiql', 'off']).optional(),
  /** Delivery attempts per notification before it is marked FAILED (backoff doubles from 5 s). */
  NOTIFICATION_MAX_ATTEMPTS: int(6, 1, 50),
  /** Where uploaded attachments are stored; default STEWARD_HOME/attachments. */
  ATTACHMENTS_DIR: optionalString,
  ATTACHMENT_MAX_BYTES: int(25 * 1024 * 1024, 1),
  /** Accepted attachment types, comma-separated. */
  ATTACHMENT_MIME_TYPES: z
    .string()
    .default(
      'application/pdf,application/json,application/zip,image/png,image/jpeg,image/gif,image/webp,text/plain,text/markdown,text/csv',
    )
    .transform((v) =>
      v
        .split(',')
        .map((t) => t.trim().toLowerCase())
        .filter(Boolean),
    ),
  /** Approvals requested without an expiry expire after this many hours. */
  APPROVAL_DEFAULT_TTL_HOURS: int(7 * 24, 1),
  /** An OPA server (its base URL) that evaluations ask about the project's active policies; unset: policies are reported NOT_EVALUATED. */
  OPA_URL: optionalString.pipe(z.url().optional()),
  /** How long an evaluation waits for OPA before reporting the policies as not evaluated (ms). */
  OPA_TIMEOUT_MS: int(3000, 100, 60_000),
  /** How long a worker holds a claimed analysis task before it is offered again (ms). */
  ANALYSIS_TASK_LEASE_MS: int(5 * 60_000, 50),
  /** Claims of an analysis task before it is FAILED for good. */
  ANALYSIS_TASK_MAX_ATTEMPTS: int(3, 1, 100),
  /** How often due work is looked for (approval expiry, notification delivery, overdue tasks), in ms. */
  JOB_TICK_MS: int(5000, 100),
  /** Default limits of the metered AI pipeline; admins override per user (setUserQuota). The prompt-governance defaults. */
  DEFAULT_REQUESTS_PER_HOUR: int(100, 1),
  DEFAULT_DAILY_TOKEN_LIMIT: int(10_000, 1),
  DEFAULT_MONTHLY_TOKEN_LIMIT: int(300_000, 1),
  /** Decimal dollars, e.g. "5.00"; unset: no cost limit (and no cost alerts) unless set per user. */
  DEFAULT_DAILY_COST_LIMIT_USD: optionalString.pipe(
    z
      .string()
      .regex(/^\d{1,12}(\.\d{1,6})?$/)
      .optional(),
  ),
  DEFAULT_MONTHLY_COST_LIMIT_USD: optionalString.pipe(
    z
      .string()
      .regex(/^\d{1,12}(\.\d{1,6})?$/)
      .optional(),
  ),
  /** A user whose deviation score reaches this (0–100) is blocked automatically. */
  DEVIATION_BLOCK_THRESHOLD: z.coerce.number().min(1).max(100).default(50),
  /** The default of the organisation setting `governanceSettings.required` (admins change it over GraphQL): every AI call must be bound to a task the caller is assigned to. */
  GOVERNANCE_REQUIRED: bool(false),
  /** When the chosen provider fails, try another healthy one before giving up. */
  AI_PROVIDER_FALLBACK: bool(true),
  /** The organisation's time zone (IANA name): where its AI budgets' days and months begin. */
  ORGANISATION_TIME_ZONE: z
    .string()
    .default('UTC')
    .refine((tz) => {
      try {
        new Intl.DateTimeFormat('en-US', { timeZone: tz });
        return true;
      } catch {
        return false;
      }
    }, 'must be an IANA time zone such as "Europe/Berlin"'),
  /** The organisation's own AI budget (decimal dollars), on top of every user's, key's and project's; unset: none. */
  ORGANISATION_DAILY_COST_LIMIT_USD: optionalString.pipe(
    z
      .string()
      .regex(/^\d{1,12}(\.\d{1,6})?$/)
      .optional(),
  ),
  ORGANISATION_MONTHLY_COST_LIMIT_USD: optionalString.pipe(
    z
      .string()
      .regex(/^\d{1,12}(\.\d{1,6})?$/)
      .optional(),
  ),
  /** A reservation held longer than this (an instance died mid-call) is released by a job. */
  RESERVATION_TTL_SECONDS: int(600, 30),
  /** Prompt logs are kept this many months (monthly partitions dropped after). */
  PROMPT_LOG_RETENTION_MONTHS: int(12, 1),
  /** How often the active providers' health is checked (once across instances), in ms. */
  PROVIDER_HEALTH_INTERVAL_MS: int(60_000, 1000),
  /** Consecutive failed checks after which a provider is marked unhealthy (and skipped); one success heals it. */
  PROVIDER_UNHEALTHY_AFTER: int(3, 1, 100),
  /** Scheduled jobs run in this instance (every instance may; each run happens once across them). */
  JOBS_ENABLED: bool(true),
  /** A RUNNING container without reported activity for this long is put to SLEEPING by a job. */
  CONTAINER_IDLE_MINUTES: int(30, 1),
  /** Limits given to a container created without its own (cores, MiB). */
  CONTAINER_DEFAULT_CPU: z.coerce.number().min(0.1).max(1024).default(1),
  CONTAINER_DEFAULT_MEMORY_MB: int(2048, 64),
  /** The most a container may ask for (cores, MiB); more is BAD_USER_INPUT. */
  CONTAINER_MAX_CPU: z.coerce.number().min(0.1).max(1024).default(16),
  CONTAINER_MAX_MEMORY_MB: int(65_536, 64),
  /** An ACTIVE MCP server without a heartbeat for this long is marked ERROR by a job. */
  MCP_HEARTBEAT_TIMEOUT_SECONDS: int(90, 5),
  /** In a conversation, how many rounds of MCP tool calls an agent's model may make before it must answer (0: no tools). */
  AGENT_MAX_TOOL_ROUNDS: int(4, 0, 20),
  /** After a commit that wrote audit events, the sealer waits this long to link a larger batch at once, in ms. */
  AUDIT_SEAL_DELAY_MS: int(20, 0, 10_000),
  /** How often a job links audit events no commit hook announced (other writers, crashed instances), in ms. */
  AUDIT_SEAL_INTERVAL_MS: int(2000, 100),
  /** The Ed25519 private key (PEM) that signs audit checkpoints; generated on first use (mode 600). Default STEWARD_HOME/audit-checkpoint-key.pem. Keep it off the database's machine. */
  AUDIT_CHECKPOINT_KEY_FILE: optionalString,
  /** Where signed checkpoints of the audit chain's head are appended (JSON lines). Default STEWARD_HOME/audit-checkpoints.jsonl. */
  AUDIT_CHECKPOINT_FILE: optionalString,
  /** How often the audit chain's head is signed into AUDIT_CHECKPOINT_FILE, in ms. */
  AUDIT_CHECKPOINT_INTERVAL_MS: int(60_000, 1000),
  /** Monthly audit partitions kept created ahead of the current month. */
  AUDIT_PARTITIONS_AHEAD: int(3, 1, 36),
  /** The server's own log lines at or above this level are also kept in system_logs (off: none). */
  SYSTEM_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'fatal', 'off']).default('warn'),
  /** System logs older than this are deleted by a job. */
  SYSTEM_LOG_RETENTION_DAYS: int(30, 1),
});

export type Config = Readonly<
  Omit<
    z.infer<typeof schema>,
    | 'TOKEN_SIGNING_KEY'
    | 'ENCRYPTION_MASTER_KEY'
    | 'PUBLIC_URL'
    | 'ATTACHMENTS_DIR'
    | 'METRICS_HOST'
    | 'AUDIT_CHECKPOINT_KEY_FILE'
    | 'AUDIT_CHECKPOINT_FILE'
  > & {
    METRICS_HOST: string;
    AUDIT_CHECKPOINT_KEY_FILE: string;
    AUDIT_CHECKPOINT_FILE: string;
    ATTACHMENTS_DIR: string;
    TOKEN_SIGNING_KEY: string;
    ENCRYPTION_MASTER_KEY: string;
    PUBLIC_URL: string;
    isProduction: boolean;
  }
>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const SECRET_NAMES = ['TOKEN_SIGNING_KEY', 'ENCRYPTION_MASTER_KEY'] as const;

/**
 * The master keys an Envelope needs: the current one (ENCRYPTION_MASTER_KEY under
 * ENCRYPTION_MASTER_KEY_VERSION) and the retired ones still able to open older secrets.
 * Throws a ConfigError when a retired key claims the current version with another key.
 */
export function masterKeys(
  config: Pick<Config, 'ENCRYPTION_MASTER_KEY' | 'ENCRYPTION_MASTER_KEY_VERSION' | 'ENCRYPTION_PREVIOUS_MASTER_KEYS'>,
): { keys: Record<string, string>; current: string } {
  const current = config.ENCRYPTION_MASTER_KEY_VERSION;
  const previous = config.ENCRYPTION_PREVIOUS_MASTER_KEYS;
  if (previous[current] !== undefined && previous[current] !== config.ENCRYPTION_MASTER_KEY) {
    throw new ConfigError(
      `ENCRYPTION_PREVIOUS_MASTER_KEYS: version ${current} is the current version (ENCRYPTION_MASTER_KEY_VERSION) with another key`,
    );
  }
  return { keys: { ...previous, [current]: config.ENCRYPTION_MASTER_KEY }, current };
}

/**
 * Reads and validates the settings. In development a missing secret is generated once
 * and kept in STEWARD_HOME/secrets.json (mode 0600) so tokens survive restarts; in
 * production a missing secret is an error, never silently generated.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid settings:\n${lines.join('\n')}`);
  }
  const c = parsed.data;
  const isProduction = c.NODE_ENV === 'production';
  const secrets: Record<string, string | undefined> = {
    TOKEN_SIGNING_KEY: c.TOKEN_SIGNING_KEY,
    ENCRYPTION_MASTER_KEY: c.ENCRYPTION_MASTER_KEY,
  };
  const missing = SECRET_NAMES.filter((n) => !secrets[n]);
  if (missing.length > 0) {
    if (isProduction) {
      throw new ConfigError(
        `Missing required secret(s) with NODE_ENV=production: ${missing.join(', ')}. ` +
          `Generate them with: node -e "console.log(require('crypto').randomBytes(32).toString('base64'))"`,
      );
    }
    Object.assign(secrets, developmentSecrets(c.STEWARD_HOME, missing));
  }
  return Object.freeze({
    ...c,
    TOKEN_SIGNING_KEY: secrets.TOKEN_SIGNING_KEY!,
    ENCRYPTION_MASTER_KEY: secrets.ENCRYPTION_MASTER_KEY!,
    PUBLIC_URL: c.PUBLIC_URL ?? `http://localhost:${c.PORT}`,
    METRICS_HOST: c.METRICS_HOST ?? c.HOST,
    AUDIT_CHECKPOINT_KEY_FILE: resolve(c.AUDIT_CHECKPOINT_KEY_FILE ?? `${c.STEWARD_HOME}/audit-checkpoint-key.pem`),
    AUDIT_CHECKPOINT_FILE: resolve(c.AUDIT_CHECKPOINT_FILE ?? `${c.STEWARD_HOME}/audit-checkpoints.jsonl`),
    ATTACHMENTS_DIR: resolve(c.ATTACHMENTS_DIR ?? `${c.STEWARD_HOME}/attachments`),
    isProduction,
  });
}

function developmentSecrets(home: string, names: readonly string[]): Record<string, string> {
  const file = resolve(home, 'secrets.json');
  const stored: Record<string, string> = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  let changed = false;
  for (const name of names) {
    if (!stored[name]) {
      stored[name] = randomBytes(32).toString('base64');
      changed = true;
    }
  }
  if (changed) {
    mkdirSync(home, { recursive: true });
    writeFileSync(file, JSON.stringify(stored, null, 2), { mode: 0o600 });
  }
  return stored;
}
