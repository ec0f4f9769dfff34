import 'reflect-metadata';

import { pathToFileURL } from 'node:url';
import type { EntityManager } from '@mikro-orm/postgresql';

import { ConfigError, loadConfig, masterKeys } from '../config.js';
import type { AuditEntry } from '../modules/audit/audit.service.js';
import { platformKeyContext, userKeyContext } from '../modules/billing/provider.service.js';
import { totpContext } from '../modules/identity/auth.service.js';
import { envContext, headerContext } from '../modules/infrastructure/mcp-server.service.js';
import { webhookSecretContext } from '../modules/work/webhook.entity.js';
import { startApp } from '../server/app.js';
import { Envelope, type SealedSecret } from '../shared/crypto.js';
import { createLogger } from '../shared/logger.js';
import { inTransaction, type Scope } from '../shared/scope.js';

/**
 * `npm run keys:rotate`: re-wraps the data key of every envelope-encrypted secret with
 * the current master key (ENCRYPTION_MASTER_KEY, version ENCRYPTION_MASTER_KEY_VERSION).
 * The secrets themselves are not decrypted or re-encrypted: only their data keys, which
 * the retired keys in ENCRYPTION_PREVIOUS_MASTER_KEYS must still open. Once it reports
 * no failures, the previous keys can be removed from the settings.
 *
 * Rotation, step by step:
 *   1. ENCRYPTION_PREVIOUS_MASTER_KEYS=1:<old key>  ENCRYPTION_MASTER_KEY=<new key>  ENCRYPTION_MASTER_KEY_VERSION=2
 *      (restart the instances: new secrets are sealed with version 2, old ones still open);
 *   2. npm run keys:rotate (with the same settings);
 *   3. remove ENCRYPTION_PREVIOUS_MASTER_KEYS and restart.
 */

/** Re-wraps one sealed secret bound to `context` (Envelope.rotate); throws when it cannot be opened. */
type Rewrap = (sealed: SealedSecret, context: string) => SealedSecret;

/** Where sealed secrets live, and the associated data each was sealed with. */
export interface SealedColumn {
  table: string;
  column: string;
  /** Columns the contexts are made of (the primary key `id` always comes along). */
  columns: string[];
  /** SQL over the row: it holds a secret not sealed with the version given as the one `?`. */
  stale: string;
  /** SQL over the row: how many of its secrets are sealed with the version given as the one `?`. */
  current: string;
  /** The column's new value, every secret in it re-wrapped, and how many were. */
  rewrap(value: any, row: Record<string, string>, rewrap: Rewrap): { value: unknown; count: number };
}

/** A column holding one sealed secret (jsonb), bound to a context made from its row. */
export function sealedColumn(
  table: string,
  column: string,
  columns: string[],
  context: (row: Record<string, string>) => string,
): SealedColumn {
  return {
    table,
    column,
    columns,
    stale: `"${column}" IS NOT NULL AND "${column}"->>'v' IS DISTINCT FROM ?`,
    current: `CASE WHEN "${column}"->>'v' = ? THEN 1 ELSE 0 END`,
    rewrap: (value: SealedSecret, row, rewrap) => ({ value: rewrap(value, context(row)), count: 1 }),
  };
}

/** A jsonb array whose elements may carry a sealed secret under `sealed`, each bound to a context made from its row and itself. */
export function sealedArrayColumn(
  table: string,
  column: string,
  columns: string[],
  context: (row: Record<string, string>, element: any) => string,
): SealedColumn {
  const elements = `jsonb_array_elements(CASE WHEN jsonb_typeof("${column}") = 'array' THEN "${column}" ELSE '[]'::jsonb END) e`;
  return {
    table,
    column,
    columns,
    stale: `EXISTS (SELECT 1 FROM ${elements} WHERE e->'sealed' IS NOT NULL AND e->'sealed'->>'v' IS DISTINCT FROM ?)`,
    current: `(SELECT count(*) FROM ${elements} WHERE e->'sealed'->>'v' = ?)`,
    rewrap(value: any[], row, rewrap) {
      let count = 0;
      const next = value.map((e) => {
        if (!e?.sealed) return e;
        const sealed = rewrap(e.sealed, context(row, e));
        if (sealed !== e.sealed) count++;
        return { ...e, sealed };
      });
      return { value: next, count };
    },
  };
}

/** Every kind of sealed secret Steward keeps. A module that seals another kind adds it here. */
export const SEALED_COLUMNS: SealedColumn[] = [
  sealedColumn('providers', 'platform_key', [], (r) => platformKeyContext(r.id!)),
  sealedColumn('user_provider_keys', 'sealed', ['user_id', 'provider_id'], (r) =>
    userKeyContext(r.user_id!, r.provider_id!),
  ),
  sealedColumn('users', 'totp_secret', [], (r) => totpContext(r.id!)),
  sealedArrayColumn('mcp_servers', 'environment', [], (r, e) => envContext(r.id!, e.name)),
  sealedArrayColumn('mcp_servers', 'headers', [], (r, e) => headerContext(r.id!, e.name)),
  sealedColumn('webhooks', 'secret', [], (r) => webhookSecretContext(r.id!)),
];

export interface ColumnReport {
  /** Secrets re-wrapped now. */
  rotated: number;
  /** Secrets already sealed with the current version. */
  current: number;
  /** Ids of rows holding a secret that could not be opened (retired key missing from the settings, or tampered with); left as they were. */
  failed: string[];
}

export interface RotationReport {
  version: string;
  /** By `table.column`. */
  columns: Record<string, ColumnReport>;
}

const BATCH = 200;

/**
 * Re-wraps, in batches of 200 rows per transaction (rows locked while re-wrapped, so a
 * concurrent change of a key waits), every secret not sealed with `envelope`'s current
 * version. A row holding a secret that cannot be opened is reported and left as it was.
 * With `audit`, the run is recorded in the audit trail (counts only).
 */
export async function rotateMasterKeys(opts: {
  em: EntityManager;
  envelope: Envelope;
  audit?: { record(tx: Scope, entry: AuditEntry): unknown };
  columns?: SealedColumn[];
}): Promise<RotationReport> {
  const version = opts.envelope.currentVersion;
  const report: RotationReport = { version, columns: {} };
  const rewrap: Rewrap = (sealed, context) => opts.envelope.rotate(sealed, context);
  for (const c of opts.columns ?? SEALED_COLUMNS) {
    const r: ColumnReport = { rotated: 0, current: 0, failed: [] };
    const [counted] = await opts.em.execute<{ n: number }[]>(
      `SELECT coalesce(sum(${c.current}), 0)::int AS n FROM "${c.table}"`,
      [version],
    );
    r.current = counted?.n ?? 0;
    for (;;) {
      const done = await inTransaction(opts.em, async (tem) => {
        const rows = await tem.execute<(Record<string, string> & { __value: unknown })[]>(
          `SELECT ${['id', ...c.columns].map((x) => `"${x}"::text AS "${x}"`).join(', ')}, "${c.column}" AS __value FROM "${c.table}"
            WHERE ${c.stale} AND NOT ("id"::text = ANY(string_to_array(?, ',')))
            ORDER BY "id" LIMIT ${BATCH} FOR UPDATE`,
          [version, r.failed.join(',')],
        );
        for (const row of rows) {
          let next: { value: unknown; count: number };
          try {
            next = c.rewrap(row.__value, row, rewrap);
          } catch {
            r.failed.push(row.id!);
            continue;
          }
          await tem.execute(`UPDATE "${c.table}" SET "${c.column}" = ?::jsonb WHERE "id" = ?`, [
            JSON.stringify(next.value),
            row.id,
          ]);
          r.rotated += next.count;
        }
        return rows.length < BATCH;
      });
      if (done) break;
    }
    report.columns[`${c.table}.${c.column}`] = r;
  }
  if (opts.audit) {
    const summary = Object.fromEntries(
      Object.entries(report.columns).map(([k, v]) => [
        k,
        { rotated: v.rotated, current: v.current, failed: v.failed.length },
      ]),
    );
    const scope: Scope = {
      em: opts.em,
      viewer: null,
      meta: { requestId: `cli:keys:rotate:${Date.now()}`, ip: null, userAgent: 'keys:rotate' },
    };
    await inTransaction(scope, async (tx) => {
      opts.audit!.record(tx, {
        action: 'keys.rotate',
        entityType: 'MasterKey',
        entityId: version,
        actorId: null,
        actorLabel: 'cli:keys:rotate',
        after: summary,
        outcome: Object.values(report.columns).some((v) => v.failed.length) ? 'FAILURE' : 'SUCCESS',
      });
    });
  }
  return report;
}

async function main() {
  let config;
  try {
    config = loadConfig({
      ...process.env,
      PORT: '0',
      JOBS_ENABLED: 'false',
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
  const { keys, current } = masterKeys(config);
  const envelope = new Envelope(keys, current);
  // The app's own wiring (migrations, the audit service) on a free loopback port, with no jobs.
  const app = await startApp({ ...config, HOST: '127.0.0.1' }, { logger: createLogger(config.LOG_LEVEL) });
  try {
    const report = await rotateMasterKeys({
      em: app.runtime.orm.em.fork() as EntityManager,
      envelope,
      audit: app.runtime.services.audit,
    });
    console.log(`Master key version ${report.version}:`);
    for (const [name, r] of Object.entries(report.columns)) {
      console.log(
        `  ${name.padEnd(32)} re-wrapped ${r.rotated}, already current ${r.current}, failed ${r.failed.length}${r.failed.length ? ` (${r.failed.join(', ')})` : ''}`,
      );
    }
    const failed = Object.values(report.columns).reduce((n, r) => n + r.failed.length, 0);
    if (failed) {
      console.error(
        `${failed} secret(s) could not be opened: keep ENCRYPTION_PREVIOUS_MASTER_KEYS until they are fixed (or their keys set again).`,
      );
      process.exitCode = 2;
    } else
      console.log(
        'Every secret is sealed with the current master key: ENCRYPTION_PREVIOUS_MASTER_KEYS can be removed.',
      );
  } finally {
    await app.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    console.error('keys:rotate failed:', err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
