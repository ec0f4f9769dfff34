import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import pLimit from 'p-limit';
import sql, { type Sql } from 'sql-template-tag';

import type { Config } from '../../config.js';
import type { SqlClient } from '../../db/sql.js';
import type { EventBus } from '../../events/bus.js';
import { conflictOnDuplicate } from '../../shared/conflict.js';
import { paginate, type Connection, type PageArgs, type SortKey } from '../../shared/connection.js';
import type { Envelope, SealedSecret } from '../../shared/crypto.js';
import { BadInputError, ConflictError, NotFoundError, requireUuid } from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import type { Logger } from '../../shared/logger.js';
import { and, contains, readModel } from '../../shared/read-model.js';
import { inTransaction, systemMeta, type Scope, type Viewer } from '../../shared/scope.js';
import { isHumanAdmin } from '../../shared/viewer.js';
import type { AuditService } from '../audit/index.js';
import { scrub } from './clients/errors.js';
import { createLlmClient, LlmCallError, SUPPORTED_TYPES, type ProviderClient } from './clients/index.js';
import type { ResolvedProvider } from './llm.js';
import { ProviderHealth } from './provider-health.entity.js';
import { Provider, ProviderType } from './provider.entity.js';
import { PROVIDER_HEALTH_CHANGED, PROVIDERS_CHANGED, type ProviderHealthChanged } from './provider.events.js';
import type { CreateProviderInput, ProviderWhere, UpdateProviderInput } from './provider.inputs.js';
import { UserProviderKey } from './user-provider-key.entity.js';

/** How long the gateway's providers of a model are trusted without a lookup (changes forget them sooner). */
const MODEL_CACHE_MS = 30_000;

export interface ProviderDeps {
  config: Config;
  db: SqlClient;
  bus: EventBus;
  envelope: Envelope;
  logger: Logger;
  audit: AuditService;
}

/** Associated data of a platform key: a sealed key moved to another provider's row fails to open. */
export const platformKeyContext = (providerId: string) => `provider:${providerId}`;
/** Associated data of a user's key: bound to both the user and the provider. */
export const userKeyContext = (userId: string, providerId: string) => `user:${userId}|provider:${providerId}`;

/** What the API may show of a key: its last four characters. */
const last4 = (key: string) => key.slice(-4);

/** What the audit trail records of a provider: never a key, at most its last four characters. */
const snapshot = (p: Provider) => ({
  name: p.name,
  providerType: p.providerType,
  modelName: p.modelName,
  apiEndpoint: p.apiEndpoint ?? null,
  active: p.active,
  platformProvided: p.platformProvided,
  inputCostPer1k: p.inputCostPer1k,
  outputCostPer1k: p.outputCostPer1k,
  maxTokens: p.maxTokens,
  timeoutSeconds: p.timeoutSeconds,
  platformKeyLast4: p.platformKeyLast4 ?? null,
});

/** A provider as the call path reads it: one statement with its health and the caller's own key. */
interface CandidateRow {
  id: string;
  name: string;
  providerType: ProviderType;
  modelName: string;
  apiEndpoint: string | null;
  active: boolean;
  platformProvided: boolean;
  inputCostPer1k: string;
  outputCostPer1k: string;
  maxTokens: number;
  timeoutSeconds: number;
  platformKey: SealedSecret | null;
  isHealthy: boolean;
  userKey: SealedSecret | null;
}

export interface HealthRow {
  providerId: string;
  isHealthy: boolean;
  lastCheckAt: Date | null;
  lastError: string | null;
  consecutiveFailures: number;
  responseTimeMs: number | null;
  checks: number;
  successes: number;
  updatedAt: Date;
}

export interface CheckOutcome {
  ok: boolean;
  responseTimeMs: number;
  error?: string;
  /** Unhealthy at once (a refused key), not after PROVIDER_UNHEALTHY_AFTER failures. */
  unhealthyNow?: boolean;
}

export interface HealthRun {
  checked: number;
  healthy: number;
  unhealthy: number;
  /** Providers whose isHealthy flipped in this run. */
  changed: string[];
}

const BY_NAME: SortKey = { property: 'name', direction: 'ASC', type: 'text' };

/** Health checks run at once (each waits up to its provider's timeout). */
const HEALTH_CONCURRENCY = 8;

/**
 * Providers: admins configure them; users see the active ones (never a
 * secret) and may keep their own key per provider. Keys are envelope-encrypted (see
 * src/shared/crypto.ts) with the row's identity as associated data; only their last four
 * characters leave the server, and neither logs nor the audit trail ever hold them.
 *
 * The call path (`resolveCall`, `fallbackFor`) picks a provider and the key to use, and
 * hands the metered pipeline a client holding that key. The health job (`checkHealth`)
 * marks providers unhealthy after PROVIDER_UNHEALTHY_AFTER consecutive failed checks
 * (they are then skipped) and healthy again after one success.
 */
export class ProviderService {
  constructor(private readonly deps: ProviderDeps) {
    const forget = () => this.byModel.clear();
    deps.bus.on(PROVIDERS_CHANGED, forget);
    deps.bus.on(PROVIDER_HEALTH_CHANGED, forget);
    deps.bus.onReconnect(forget); // events may have been missed
  }

  /**
   * The gateway's providers of a model for a user, as read: a call by model name costs no
   * SQL while nothing changed. Any provider, key or health change forgets them all, on every
   * instance (the bus); an entry lives at most MODEL_CACHE_MS in any case.
   */
  private readonly byModel = new Map<string, { rows: CandidateRow[]; until: number }>();

  /** Inside the transaction of a change: caches forget once it commits. */
  private changed(tx: Scope) {
    return this.deps.bus.publish(tx.em, PROVIDERS_CHANGED, {});
  }

  // ---------- reading ----------

  /** SQL condition: the providers (aliased `t`) a viewer may see. Admins: all; others: active ones. */
  visible(viewer: Viewer): Sql {
    return isHumanAdmin(viewer) ? sql`TRUE` : sql`t.active`;
  }

  /** Providers by name; `where.active` is an admin's filter (others see active providers only). */
  list(
    viewer: Viewer,
    fields: Iterable<string>,
    where: ProviderWhere,
    page: PageArgs,
  ): Promise<Connection<Record<string, unknown>>> {
    const search = where.search?.trim();
    return paginate(
      this.deps.db,
      {
        model: readModel(Provider),
        fields,
        where: and([
          this.visible(viewer),
          where.active != null ? sql`t.active = ${where.active}` : null,
          where.providerType?.length ? sql`t.provider_type = ANY(${where.providerType}::provider_type[])` : null,
          search ? sql`(${contains('t.name', search)} OR ${contains('t.model_name', search)})` : null,
        ]),
        sort: BY_NAME,
      },
      page,
    );
  }

  /** Health rows by provider id, in the order asked (null where none was recorded): a DataLoader's batch. */
  async healthOf(providerIds: readonly string[]): Promise<(HealthRow | null)[]> {
    const rows = await this.deps.db.query<HealthRow>(sql`
      SELECT provider_id AS "providerId", is_healthy AS "isHealthy", last_check_at AS "lastCheckAt", last_error AS "lastError",
             consecutive_failures AS "consecutiveFailures", response_time_ms AS "responseTimeMs", checks, successes, updated_at AS "updatedAt"
        FROM provider_health WHERE provider_id = ANY(${providerIds}::uuid[])`);
    const byId = new Map(rows.map((r) => [r.providerId, r]));
    return providerIds.map((id) => byId.get(id) ?? null);
  }

  /** The caller's own keys (at most one per provider), oldest first. Never the key: its last four characters. */
  myKeys(viewer: Viewer): Promise<Record<string, unknown>[]> {
    return this.deps.db.query(sql`
      SELECT id, provider_id AS provider, last4, active, created_at AS "createdAt", updated_at AS "updatedAt"
        FROM user_provider_keys WHERE user_id = ${viewer.userId}::uuid ORDER BY created_at, id`);
  }

  // ---------- administration ----------

  async create(scope: Scope, input: CreateProviderInput): Promise<Provider> {
    const name = input.name.trim();
    if (!name) throw BadInputError.field('name', 'must not be blank');
    const modelName = input.modelName.trim();
    if (!modelName) throw BadInputError.field('modelName', 'must not be blank');
    const apiEndpoint = this.endpoint(input.providerType, input.apiEndpoint);
    const apiKey = this.key(input.providerType, input.apiKey);
    return conflictOnDuplicate(
      () =>
        inTransaction(scope, async (tx) => {
          const provider = tx.em.create(Provider, {
            name,
            providerType: input.providerType,
            modelName,
            apiEndpoint,
            inputCostPer1k: input.inputCostPer1k,
            outputCostPer1k: input.outputCostPer1k,
            maxTokens: input.maxTokens ?? 4096,
            timeoutSeconds: input.timeoutSeconds ?? 60,
            active: input.active ?? true,
            platformProvided: input.platformProvided ?? true,
          });
          if (apiKey) {
            provider.platformKey = this.deps.envelope.encrypt(apiKey, platformKeyContext(provider.id));
            provider.platformKeyLast4 = last4(apiKey);
          }
          tx.em.create(ProviderHealth, { provider });
          await tx.em.flush();
          this.deps.audit.record(tx, {
            action: 'provider.create',
            entityType: 'Provider',
            entityId: provider.id,
            after: snapshot(provider),
          });
          await this.changed(tx);
          return provider;
        }),
      `A provider named "${name}" already exists`,
      { field: 'name' },
    );
  }

  async update(scope: Scope, input: UpdateProviderInput): Promise<Provider> {
    const id = requireUuid(input.id);
    if (input.apiKey && input.removeApiKey) throw new BadInputError('Give a new apiKey or removeApiKey, not both');
    return conflictOnDuplicate(
      () =>
        inTransaction(scope, async (tx) => {
          const p = await tx.em.findOne(Provider, id, { lockMode: LockMode.PESSIMISTIC_WRITE });
          if (!p) throw new NotFoundError('Provider', id);
          const before = snapshot(p);
          if (input.name != null) {
            const name = input.name.trim();
            if (!name) throw BadInputError.field('name', 'must not be blank');
            p.name = name;
          }
          if (input.modelName != null) {
            const modelName = input.modelName.trim();
            if (!modelName) throw BadInputError.field('modelName', 'must not be blank');
            p.modelName = modelName;
          }
          if (input.apiEndpoint !== undefined) p.apiEndpoint = this.endpoint(p.providerType, input.apiEndpoint);
          if (input.inputCostPer1k != null) p.inputCostPer1k = input.inputCostPer1k;
          if (input.outputCostPer1k != null) p.outputCostPer1k = input.outputCostPer1k;
          if (input.maxTokens != null) p.maxTokens = input.maxTokens;
          if (input.timeoutSeconds != null) p.timeoutSeconds = input.timeoutSeconds;
          if (input.active != null) p.active = input.active;
          if (input.platformProvided != null) p.platformProvided = input.platformProvided;
          if (input.apiKey != null) {
            const key = this.key(p.providerType, input.apiKey)!;
            p.platformKey = this.deps.envelope.encrypt(key, platformKeyContext(p.id));
            p.platformKeyLast4 = last4(key);
          } else if (input.removeApiKey) {
            p.platformKey = null;
            p.platformKeyLast4 = null;
          }
          await tx.em.flush();
          const after = snapshot(p);
          const keyChange =
            input.apiKey != null ? 'replaced' : input.removeApiKey && before.platformKeyLast4 ? 'removed' : undefined;
          this.deps.audit.record(tx, {
            action: 'provider.update',
            entityType: 'Provider',
            entityId: p.id,
            before,
            after: keyChange ? { ...after, platformKey: keyChange } : after,
          });
          await this.changed(tx);
          return p;
        }),
      `A provider named "${input.name?.trim()}" already exists`,
      { field: 'name' },
    );
  }

  private endpoint(type: ProviderType, value: string | null | undefined): string | null {
    const text = value?.trim();
    if (!text) return null;
    if (type === ProviderType.LOCAL)
      throw BadInputError.field('apiEndpoint', 'LOCAL runs inside Steward and has no endpoint');
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw BadInputError.field('apiEndpoint', 'must be an http(s) URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw BadInputError.field('apiEndpoint', 'must be an http(s) URL');
    if (url.username || url.password)
      throw BadInputError.field('apiEndpoint', 'must not carry credentials: give the key as apiKey');
    return text.replace(/\/+$/, '');
  }

  /** A key as given, checked without ever echoing it. */
  private key(type: ProviderType, value: string | null | undefined, field = 'apiKey'): string | null {
    if (value == null || value === '') return null;
    if (type === ProviderType.LOCAL) throw BadInputError.field(field, 'LOCAL needs no key');
    const key = value.trim();
    if (key.length < 8 || key.length > 4096 || /\s/.test(key))
      throw BadInputError.field(field, 'must be 8 to 4096 characters without spaces');
    return key;
  }

  // ---------- users' own keys ----------

  /** Stores (or replaces) the caller's own key for a provider it can see. */
  async setMyKey(
    scope: Scope,
    viewer: Viewer,
    input: { providerId: string; apiKey: string },
  ): Promise<UserProviderKey> {
    const providerId = requireUuid(input.providerId, 'providerId');
    const provider = await this.deps.db.one<{ providerType: ProviderType; active: boolean }>(
      sql`SELECT provider_type AS "providerType", active FROM providers t WHERE id = ${providerId}::uuid AND ${this.visible(viewer)}`,
    );
    if (!provider) throw new NotFoundError('Provider', providerId);
    const key = this.key(provider.providerType, input.apiKey);
    if (!key) throw BadInputError.field('apiKey', 'must be 8 to 4096 characters without spaces');
    const sealed = this.deps.envelope.encrypt(key, userKeyContext(viewer.userId, providerId));
    return inTransaction(scope, async (tx) => {
      // One statement: two concurrent sets of the same key end with one row, the later key.
      const [row] = await tx.em.execute<{ id: string; replaced: boolean }[]>(
        `INSERT INTO user_provider_keys (id, user_id, provider_id, sealed, last4, active) VALUES (?, ?, ?, ?, ?, true)
         ON CONFLICT (user_id, provider_id) DO UPDATE SET sealed = EXCLUDED.sealed, last4 = EXCLUDED.last4, active = true, updated_at = now()
         RETURNING id, (xmax::text <> '0') AS replaced`,
        [newId(), viewer.userId, providerId, JSON.stringify(sealed), last4(key)],
      );
      this.deps.audit.record(tx, {
        action: row!.replaced ? 'providerKey.replace' : 'providerKey.set',
        entityType: 'UserProviderKey',
        entityId: row!.id,
        after: { providerId, last4: last4(key) },
      });
      await this.changed(tx);
      return tx.em.findOneOrFail(UserProviderKey, row!.id, { refresh: true });
    });
  }

  /** Deletes the caller's own key for a provider; false when there was none. */
  async deleteMyKey(scope: Scope, viewer: Viewer, id: string): Promise<boolean> {
    const providerId = requireUuid(id, 'providerId');
    return inTransaction(scope, async (tx) => {
      const [row] = await tx.em.execute<{ id: string; last4: string }[]>(
        `DELETE FROM user_provider_keys WHERE user_id = ? AND provider_id = ? RETURNING id, last4`,
        [viewer.userId, providerId],
      );
      if (!row) return false;
      this.deps.audit.record(tx, {
        action: 'providerKey.delete',
        entityType: 'UserProviderKey',
        entityId: row.id,
        before: { providerId, last4: row.last4 },
      });
      await this.changed(tx);
      return true;
    });
  }

  // ---------- the call path ----------

  private candidates(userId: string, where: Sql): Promise<CandidateRow[]> {
    return this.deps.db.query<CandidateRow>(sql`
      SELECT p.id, p.name, p.provider_type AS "providerType", p.model_name AS "modelName", p.api_endpoint AS "apiEndpoint",
             p.active, p.platform_provided AS "platformProvided", p.input_cost_per1k AS "inputCostPer1k",
             p.output_cost_per1k AS "outputCostPer1k", p.max_tokens AS "maxTokens", p.timeout_seconds AS "timeoutSeconds",
             p.platform_key AS "platformKey", coalesce(h.is_healthy, true) AS "isHealthy", k.sealed AS "userKey"
        FROM providers p
        LEFT JOIN provider_health h ON h.provider_id = p.id
        LEFT JOIN user_provider_keys k ON k.provider_id = p.id AND k.user_id = ${userId}::uuid AND k.active
       WHERE ${where}
       ORDER BY (p.provider_type = 'LOCAL'), (p.input_cost_per1k + p.output_cost_per1k), p.id`);
  }

  /**
   * The key a call to `p` uses, or undefined when the caller has none it may use:
   * the caller's own key first; else the platform key, when the provider is
   * platform-provided; else no key at all for LOCAL and for a platform-provided
   * OpenAI-compatible endpoint without a key (a self-hosted Ollama or vLLM).
   */
  private keyFor(p: CandidateRow): { source: 'USER' | 'PLATFORM'; sealed: SealedSecret | null } | undefined {
    if (p.userKey && p.providerType !== ProviderType.LOCAL) return { source: 'USER', sealed: p.userKey };
    if (p.providerType === ProviderType.LOCAL) return { source: 'PLATFORM', sealed: null };
    if (!p.platformProvided) return undefined;
    if (p.platformKey) return { source: 'PLATFORM', sealed: p.platformKey };
    if (p.providerType === ProviderType.OPENAI && p.apiEndpoint) return { source: 'PLATFORM', sealed: null };
    return undefined;
  }

  /**
   * Clients by provider, endpoint and sealed key: a call reuses its provider's client
   * instead of building one and decrypting the key each time (connections are pooled per
   * provider origin underneath, whatever the client). A changed key or endpoint is another
   * entry; the map is bounded.
   */
  private readonly clients = new Map<string, ProviderClient>();

  private build(
    p: CandidateRow,
    userId: string,
    key: { source: 'USER' | 'PLATFORM'; sealed: SealedSecret | null },
  ): ResolvedProvider {
    const cacheKey = `${p.id}|${p.providerType}|${p.apiEndpoint ?? ''}|${key.source}|${key.source === 'USER' ? userId : ''}|${key.sealed ? JSON.stringify(key.sealed) : ''}`;
    let client = this.clients.get(cacheKey);
    if (!client) {
      client = createLlmClient(p, this.openKey(p, userId, key));
      if (this.clients.size >= 1000) this.clients.clear();
      this.clients.set(cacheKey, client);
    }
    return {
      provider: {
        id: p.id,
        name: p.name,
        providerType: p.providerType,
        modelName: p.modelName,
        inputCostPer1k: p.inputCostPer1k,
        outputCostPer1k: p.outputCostPer1k,
        maxTokens: p.maxTokens,
        timeoutSeconds: p.timeoutSeconds,
      },
      client,
      keySource: key.source,
    };
  }

  private openKey(
    p: CandidateRow,
    userId: string,
    key: { source: 'USER' | 'PLATFORM'; sealed: SealedSecret | null },
  ): string | null {
    let apiKey: string | null = null;
    if (key.sealed) {
      const context = key.source === 'USER' ? userKeyContext(userId, p.id) : platformKeyContext(p.id);
      try {
        apiKey = this.deps.envelope.decrypt(key.sealed, context);
      } catch (err) {
        // Tampered with, copied from another row, or sealed by a master key no longer configured.
        this.deps.logger.warn(
          { module: 'providers', providerId: p.id, keySource: key.source, reason: (err as Error).message },
          'a stored provider key could not be decrypted',
        );
        throw key.source === 'USER'
          ? new ConflictError(`Your stored key for ${p.name} cannot be read: set it again with setMyProviderKey`, {
              providerId: p.id,
              reason: 'KEY_UNREADABLE',
            })
          : new ConflictError(`The platform key of ${p.name} cannot be read: an administrator must set it again`, {
              providerId: p.id,
              reason: 'KEY_UNREADABLE',
            });
      }
    }
    return apiKey;
  }

  /**
   * The provider and key for a call by `userId`.
   *
   * With `providerId`: that provider, which must exist, be active (else CONFLICT,
   * reason PROVIDER_INACTIVE) and healthy (else CONFLICT, reason PROVIDER_UNHEALTHY), and
   * for which the user has a key it may use (else BAD_USER_INPUT: set your own key).
   * GOOGLE and HUGGINGFACE resolve to a client that refuses at call time.
   *
   * Without: the default provider is the first usable one in this order — real models
   * before LOCAL (the built-in model is for development and demos: once an admin has
   * configured a real provider, users expect real answers), then the cheapest (input +
   * output price per 1k tokens), then the oldest. Usable: active, healthy, with a client,
   * and a key the user may use. NOT_FOUND when there is none.
   */
  async resolveCall(userId: string, providerId?: string | null): Promise<ResolvedProvider> {
    if (providerId) {
      const id = requireUuid(providerId, 'providerId');
      const [p] = await this.candidates(userId, sql`p.id = ${id}::uuid`);
      if (!p) throw new NotFoundError('Provider', id);
      if (!p.active)
        throw new ConflictError(`Provider ${p.name} is not active`, { providerId: id, reason: 'PROVIDER_INACTIVE' });
      if (!p.isHealthy)
        throw new ConflictError(`Provider ${p.name} is unhealthy at the moment`, {
          providerId: id,
          reason: 'PROVIDER_UNHEALTHY',
        });
      if (!SUPPORTED_TYPES.has(p.providerType)) return this.build(p, userId, { source: 'PLATFORM', sealed: null });
      const key = this.keyFor(p);
      if (!key)
        throw new BadInputError(`Provider ${p.name} needs your own API key: set it with setMyProviderKey`, {
          providerId: id,
          reason: 'KEY_REQUIRED',
        });
      return this.build(p, userId, key);
    }
    const found = await this.firstUsable(userId, sql`p.active AND coalesce(h.is_healthy, true)`);
    if (!found) throw new NotFoundError('An active, healthy provider you can use');
    return found;
  }

  /**
   * Another provider for a call that failed on `failedProviderId`, by the default
   * order of resolveCall, or null. LOCAL is never the fallback of a real provider: a
   * demo model's answer is no stand-in for a real one.
   */
  async fallbackFor(failedProviderId: string, userId: string, model?: string | null): Promise<ResolvedProvider | null> {
    const failed = requireUuid(failedProviderId, 'providerId');
    const [was] = await this.deps.db.query<{ providerType: ProviderType; modelName: string }>(
      sql`SELECT provider_type AS "providerType", model_name AS "modelName" FROM providers WHERE id = ${failed}::uuid`,
    );
    const noLocal = was && was.providerType !== ProviderType.LOCAL;
    return this.firstUsable(
      userId,
      and([
        sql`p.active AND coalesce(h.is_healthy, true) AND p.id <> ${failed}::uuid`,
        noLocal ? sql`p.provider_type <> 'LOCAL'` : null,
        model && was ? sql`p.model_name = ${was.modelName}` : null,
      ]),
    );
  }

  /**
   * The provider for a gateway call naming `model`: the model as a provider serves it
   * (`gpt-4o-mini`), or `<provider name>/<model>` for one provider in particular. Among
   * those serving it, the first usable by resolveCall's order. NOT_FOUND (OpenAI's
   * model_not_found) when no active provider the caller may use serves it; CONFLICT
   * (PROVIDER_UNHEALTHY) when all that do are unhealthy.
   */
  async resolveModel(userId: string, model: string): Promise<ResolvedProvider> {
    const slash = model.indexOf('/');
    const byName =
      slash > 0 ? sql` OR (p.name = ${model.slice(0, slash)} AND p.model_name = ${model.slice(slash + 1)})` : sql``;
    const cacheKey = `${userId}\u0000${model}`;
    const hit = this.byModel.get(cacheKey);
    let rows = hit && hit.until > Date.now() ? hit.rows : undefined;
    if (!rows) {
      rows = await this.candidates(userId, sql`p.active AND (p.model_name = ${model}${byName})`);
      if (this.byModel.size >= 10_000) this.byModel.clear();
      this.byModel.set(cacheKey, { rows, until: Date.now() + MODEL_CACHE_MS });
    }
    const usable = rows.filter((p) => SUPPORTED_TYPES.has(p.providerType) && this.keyFor(p));
    if (!usable.length) throw new NotFoundError(`The model '${model}'`);
    for (const p of usable) {
      if (!p.isHealthy) continue;
      try {
        return this.build(p, userId, this.keyFor(p)!);
      } catch (err) {
        if (err instanceof ConflictError) continue;
        throw err;
      }
    }
    throw new ConflictError(`Every provider of ${model} is unhealthy at the moment`, { reason: 'PROVIDER_UNHEALTHY' });
  }

  /**
   * The models a user may call through the gateway (active providers with a key they may
   * use): each model by its name, and `<provider name>/<model>` where two providers serve one name.
   */
  async modelsFor(userId: string): Promise<{ id: string; model: string; ownedBy: string; created: number }[]> {
    const rows = await this.deps.db.query<CandidateRow & { createdAt: Date }>(sql`
      SELECT p.id, p.name, p.provider_type AS "providerType", p.model_name AS "modelName", p.platform_provided AS "platformProvided",
             p.platform_key IS NOT NULL AS "platformKey", p.api_endpoint AS "apiEndpoint", k.sealed IS NOT NULL AS "userKey", p.created_at AS "createdAt"
        FROM providers p LEFT JOIN user_provider_keys k ON k.provider_id = p.id AND k.user_id = ${userId}::uuid AND k.active
       WHERE p.active ORDER BY p.model_name, p.name`);
    const usable = rows.filter((p) => SUPPORTED_TYPES.has(p.providerType) && this.keyFor(p));
    const count = new Map<string, number>();
    for (const p of usable) count.set(p.modelName, (count.get(p.modelName) ?? 0) + 1);
    const out: { id: string; model: string; ownedBy: string; created: number }[] = [];
    const seen = new Set<string>();
    for (const p of usable) {
      const created = Math.floor(new Date(p.createdAt).getTime() / 1000);
      if (!seen.has(p.modelName)) {
        seen.add(p.modelName);
        out.push({ id: p.modelName, model: p.modelName, ownedBy: p.name, created });
      }
      if ((count.get(p.modelName) ?? 0) > 1)
        out.push({ id: `${p.name}/${p.modelName}`, model: p.modelName, ownedBy: p.name, created });
    }
    return out;
  }

  /**
   * Real call outcomes feed provider health, as the health job's checks do: a failure is
   * recorded at once (a refused key — AUTH — makes the provider unhealthy at once, it will
   * not heal by itself), and the first success after failures resets the count. Successes
   * of a provider with no failure on record cost nothing (no write on the hot path).
   */
  reportOutcome(
    em: EntityManager,
    providerId: string,
    outcome: { ok: true } | { ok: false; error: string; unhealthyNow?: boolean },
  ): void {
    if (outcome.ok && !this.failing.has(providerId)) return;
    if (outcome.ok) this.failing.delete(providerId);
    else this.failing.add(providerId);
    const scope: Scope = { em: em.fork() as EntityManager, viewer: null, meta: systemMeta('provider.outcome') };
    void this.recordCheck(
      scope,
      providerId,
      outcome.ok
        ? { ok: true, responseTimeMs: 0 }
        : { ok: false, responseTimeMs: 0, error: outcome.error.slice(0, 500), unhealthyNow: outcome.unhealthyNow },
    ).catch((err) =>
      this.deps.logger.warn(
        { module: 'providers', providerId, err },
        'a call outcome could not be recorded in provider health',
      ),
    );
  }

  /** Providers with a failed call on record since their last success (this instance's view). */
  private readonly failing = new Set<string>();

  private async firstUsable(userId: string, where: Sql): Promise<ResolvedProvider | null> {
    for (const p of await this.candidates(userId, where)) {
      if (!SUPPORTED_TYPES.has(p.providerType)) continue;
      const key = this.keyFor(p);
      if (!key) continue;
      try {
        return this.build(p, userId, key);
      } catch (err) {
        if (err instanceof ConflictError) continue; // an unreadable key: the next provider may do
        throw err;
      }
    }
    return null;
  }

  // ---------- health ----------

  /**
   * Checks every active provider Steward has a client for, at most HEALTH_CONCURRENCY at
   * once, each with its own timeout: LOCAL trivially, the others by listing their models
   * with the platform key. Without a platform key (users bring their own) a provider
   * that answers at all, even 401/403, is reachable and counts as healthy; with one, a
   * refused key is a failure (calls with it would fail). Run by a job, once across instances.
   */
  async checkHealth(em: EntityManager): Promise<HealthRun> {
    const providers = await this.deps.db.query<CandidateRow>(sql`
      SELECT id, name, provider_type AS "providerType", api_endpoint AS "apiEndpoint", timeout_seconds AS "timeoutSeconds", platform_key AS "platformKey"
        FROM providers WHERE active AND provider_type = ANY(${[...SUPPORTED_TYPES]}::provider_type[]) ORDER BY id`);
    const limit = pLimit(HEALTH_CONCURRENCY);
    const outcomes = await Promise.all(providers.map((p) => limit(() => this.probe(p))));
    const scope: Scope = { em, viewer: null, meta: systemMeta('provider.health') };
    const run: HealthRun = { checked: 0, healthy: 0, unhealthy: 0, changed: [] };
    for (const [i, p] of providers.entries()) {
      const { row, changed } = await this.recordCheck(scope, p.id, outcomes[i]!);
      run.checked++;
      if (row.isHealthy) run.healthy++;
      else run.unhealthy++;
      if (changed) run.changed.push(p.id);
    }
    return run;
  }

  private async probe(
    p: Pick<CandidateRow, 'id' | 'name' | 'providerType' | 'apiEndpoint' | 'timeoutSeconds' | 'platformKey'>,
  ): Promise<CheckOutcome> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    let key: string | null = null;
    if (p.platformKey) {
      try {
        key = this.deps.envelope.decrypt(p.platformKey, platformKeyContext(p.id));
      } catch {
        return { ok: false, responseTimeMs: 0, error: 'the platform key cannot be decrypted' };
      }
    }
    let client: ProviderClient;
    try {
      client = createLlmClient(p, key);
      await client.probe(p.timeoutSeconds * 1000);
      return { ok: true, responseTimeMs: elapsed() };
    } catch (err) {
      if (!key && err instanceof LlmCallError && err.kind === 'AUTH') return { ok: true, responseTimeMs: elapsed() };
      const message = err instanceof LlmCallError ? err.message : scrub(String((err as Error)?.message ?? err), key);
      return { ok: false, responseTimeMs: elapsed(), error: message.slice(0, 500) };
    }
  }

  /**
   * Records one check of a provider in one transaction: response time, the check and
   * success counts, consecutive failures; unhealthy at PROVIDER_UNHEALTHY_AFTER
   * consecutive failures, healthy again at the first success. A flip is audited and
   * published on `providerHealthChanged` (after commit).
   */
  async recordCheck(
    scope: Scope,
    providerId: string,
    outcome: CheckOutcome,
  ): Promise<{ row: HealthRow; changed: boolean }> {
    return inTransaction(scope, async (tx) => {
      await tx.em.execute(`INSERT INTO provider_health (provider_id) VALUES (?) ON CONFLICT (provider_id) DO NOTHING`, [
        providerId,
      ]);
      const [old] = await tx.em.execute<{ is_healthy: boolean; consecutive_failures: number }[]>(
        `SELECT is_healthy, consecutive_failures FROM provider_health WHERE provider_id = ? FOR UPDATE`,
        [providerId],
      );
      const failures = outcome.ok ? 0 : old!.consecutive_failures + 1;
      const healthy = outcome.ok
        ? true
        : failures >= this.deps.config.PROVIDER_UNHEALTHY_AFTER || outcome.unhealthyNow
          ? false
          : old!.is_healthy;
      const [row] = await tx.em.execute<HealthRow[]>(
        `UPDATE provider_health SET is_healthy = ?, last_check_at = now(), last_error = ?, consecutive_failures = ?, response_time_ms = ?,
                checks = checks + 1, successes = successes + ?, updated_at = now()
          WHERE provider_id = ?
          RETURNING provider_id AS "providerId", is_healthy AS "isHealthy", last_check_at AS "lastCheckAt", last_error AS "lastError",
                    consecutive_failures AS "consecutiveFailures", response_time_ms AS "responseTimeMs", checks, successes, updated_at AS "updatedAt"`,
        [
          healthy,
          outcome.ok ? null : (outcome.error ?? 'check failed'),
          failures,
          outcome.responseTimeMs,
          outcome.ok ? 1 : 0,
          providerId,
        ],
      );
      const changed = healthy !== old!.is_healthy;
      if (changed) {
        this.deps.audit.record(tx, {
          action: healthy ? 'provider.healthy' : 'provider.unhealthy',
          entityType: 'Provider',
          entityId: providerId,
          actorId: null,
          actorLabel: 'job:provider.health',
          before: { isHealthy: old!.is_healthy },
          after: {
            isHealthy: healthy,
            consecutiveFailures: failures,
            lastError: outcome.ok ? null : (outcome.error ?? null),
          },
        });
        await this.deps.bus.publish(tx.em, PROVIDER_HEALTH_CHANGED, {
          providerId,
          isHealthy: healthy,
        } satisfies ProviderHealthChanged);
      }
      return { row: row!, changed };
    });
  }
}
