import type { IncomingHttpHeaders } from 'node:http';
import type { EntityManager } from '@mikro-orm/postgresql';

import type { EventBus } from '../../events/bus.js';
import { sha256 } from '../../shared/crypto.js';
import { AppError, BadInputError, requireUuid, UnauthenticatedError } from '../../shared/errors.js';
import type { RequestMeta, Scope, Viewer } from '../../shared/scope.js';
import { requireTokenScope } from '../../shared/token-scopes.js';
import type { BudgetState, ChatDelta, MeteredResult, MeteringService, ProviderService } from '../billing/index.js';
import { API_TOKEN_PREFIX } from '../identity/api-token.entity.js';
import {
  CREDENTIALS_REVOKED,
  USER_UPDATED,
  type Authenticator,
  type CredentialsRevoked,
  type UserUpdated,
} from '../identity/index.js';
import type { ModelAccess } from '../model-access/index.js';
import { PROJECT_ACCESS_CHANGED, type ProjectAccessChanged } from '../projects/index.js';
import { ProjectRole } from '../projects/project-member.entity.js';
import { TASK_DELETED, TASK_UPDATED, type TaskEvent, type TaskPolicy } from '../work/index.js';
import { KEY_RULES_SQL, keyRules, modelAllowed, ModelNotAllowedError, type KeyRules } from './key-rules.js';
import type { GatewayChat } from './openai-format.js';
import { VIRTUAL_KEY_CHANGED, type VirtualKeyChanged } from './virtual-key.events.js';

export interface GatewayDeps {
  authenticator: Pick<Authenticator, 'fromToken'>;
  providers: Pick<ProviderService, 'resolveModel' | 'modelsFor'>;
  metering: Pick<MeteringService, 'call'>;
  taskPolicy: Pick<TaskPolicy, 'require'>;
  modelAccess: Pick<ModelAccess, 'require' | 'filter'>;
}

/** The task that governs a call and the project it is attributed to (see binding). */
export interface Binding {
  taskId: string | null;
  projectId: string | null;
  allowedIntents: string[];
}

/** An authenticated key, as cached: its viewer, rules, and the bindings it was allowed (by X-Steward-Task). */
interface Caller {
  viewer: Viewer;
  rules: KeyRules | null;
  until: number;
  bindings: Map<string, Binding>;
}

/** One gateway request: its headers, metadata and the unit of work to fork. */
export interface GatewayRequest {
  headers: IncomingHttpHeaders;
  meta: RequestMeta;
  em: EntityManager;
  /** The caller's key's rules (see caller). */
  rules: KeyRules | null;
  /** The caller's cached bindings (see caller). */
  bindings: Map<string, Binding>;
}

/** How long an authenticated key is trusted without a lookup (the bus invalidates it sooner). */
const AUTH_CACHE_MS = 30_000;
const AUTH_CACHE_ENTRIES = 10_000;

export const TASK_HEADER = 'x-steward-task';

/**
 * The AI gateway's rules (the routes only speak the wire formats): who the caller is
 * (a Steward API token, as `Authorization: Bearer` or Anthropic's `x-api-key`), which
 * task governs the call (`X-Steward-Task`, checked exactly as a conversation's task is:
 * the caller must contribute to it; the call is then attributed to the task and its
 * project), which provider serves the model asked for, and the call itself — through
 * the one metered pipeline, like every AI call of the organisation.
 */
export class GatewayService {
  constructor(private readonly deps: GatewayDeps) {}

  /**
   * API-key authentication cached per key (by its SHA-256, never the key): a hit costs no
   * SQL. An entry lives at most AUTH_CACHE_MS and never past the key's expiry, and goes at
   * once when the bus says the key or its user changed (revoked, blocked, suspended, role or
   * status changed) — on every instance, as every instance listens on the bus. With it go
   * the task bindings the key was allowed; a binding goes sooner when its task changes or
   * its project's access does (a member removed, a role changed, the project archived).
   */
  private readonly cache = new Map<string, Caller>();
  private listening = false;

  private listen(bus: Pick<EventBus, 'on'>) {
    if (this.listening) return;
    this.listening = true;
    const forget = (match: (v: Viewer) => boolean) => {
      for (const [k, e] of this.cache) if (match(e.viewer)) this.cache.delete(k);
    };
    bus.on(CREDENTIALS_REVOKED, (p) => {
      const r = p as CredentialsRevoked;
      forget((v) => v.userId === r.userId || (!!r.apiTokenId && v.apiTokenId === r.apiTokenId));
    });
    bus.on(USER_UPDATED, (p) => forget((v) => v.userId === (p as UserUpdated).id));
    bus.on(VIRTUAL_KEY_CHANGED, (p) => forget((v) => v.apiTokenId === (p as VirtualKeyChanged).apiTokenId));
    const unbind = (match: (b: Binding) => boolean) => {
      for (const e of this.cache.values()) for (const [k, b] of e.bindings) if (match(b)) e.bindings.delete(k);
    };
    const taskChanged = (p: unknown) => unbind((b) => b.taskId === (p as TaskEvent).taskId);
    bus.on(TASK_UPDATED, taskChanged);
    bus.on(TASK_DELETED, taskChanged);
    bus.on(PROJECT_ACCESS_CHANGED, (p) => unbind((b) => b.projectId === (p as ProjectAccessChanged).projectId));
  }

  /** The caller and its key's rules, from the cache or (one lookup each) the database. */
  async caller(headers: IncomingHttpHeaders, em: EntityManager, bus: Pick<EventBus, 'on'>): Promise<Caller> {
    this.listen(bus);
    const token = this.tokenOf(headers);
    const id = sha256(token);
    const hit = this.cache.get(id);
    if (hit && hit.until > Date.now()) return hit;
    const viewer = await this.deps.authenticator.fromToken(token);
    // A token with scopes reaches the gateway only with the `ai` scope.
    requireTokenScope(viewer, 'ai');
    const [row] = viewer.apiTokenId ? await em.execute(KEY_RULES_SQL, [viewer.apiTokenId]) : [];
    const rules = row ? keyRules(viewer.apiTokenId!, row as Parameters<typeof keyRules>[1]) : null;
    const expires = (row as { expires_at?: Date | null } | undefined)?.expires_at;
    const until = Math.min(Date.now() + AUTH_CACHE_MS, expires ? new Date(expires).getTime() : Infinity);
    if (this.cache.size >= AUTH_CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    const entry: Caller = { viewer, rules, until, bindings: new Map() };
    this.cache.set(id, entry);
    return entry;
  }

  private tokenOf(headers: IncomingHttpHeaders): string {
    const auth = headers.authorization;
    const apiKey = headers['x-api-key'];
    let token: string | undefined;
    if (typeof auth === 'string' && auth) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
      if (!m) throw new UnauthenticatedError('Authorization must be "Bearer <Steward API token>"');
      token = m[1];
    } else if (typeof apiKey === 'string' && apiKey) token = apiKey.trim();
    if (!token)
      throw new UnauthenticatedError(
        'Give a Steward API token as "Authorization: Bearer <token>" or "x-api-key: <token>"',
      );
    if (!token.startsWith(API_TOKEN_PREFIX))
      throw new UnauthenticatedError(
        `The gateway takes Steward API tokens (${API_TOKEN_PREFIX}…): create one with createApiToken`,
      );
    return token;
  }

  /**
   * The task that governs the call — X-Steward-Task, or the key's bound task (a header may
   * only repeat it) — which the caller must contribute to, and the project the call is
   * attributed to: the task's, else the key's (a task outside the key's project is refused).
   */
  async binding(viewer: Viewer, headers: IncomingHttpHeaders, rules: KeyRules | null): Promise<Binding> {
    const given = headers[TASK_HEADER];
    if (given !== undefined && typeof given !== 'string')
      throw new BadInputError('X-Steward-Task: give one task id', { field: TASK_HEADER });
    const named = given !== undefined ? requireUuid(given.trim(), TASK_HEADER) : null;
    if (named && rules?.boundTaskId && named !== rules.boundTaskId)
      throw new AppError('FORBIDDEN', 'This key is bound to another task', { reason: 'task_not_allowed' });
    const taskId = named ?? rules?.boundTaskId ?? null;
    if (!taskId) return { taskId: null, projectId: rules?.boundProjectId ?? null, allowedIntents: [] };
    const task = await this.deps.taskPolicy.require(viewer, taskId, ProjectRole.CONTRIBUTOR);
    if (rules?.boundProjectId && task.projectId !== rules.boundProjectId)
      throw new AppError('FORBIDDEN', 'This key is bound to a project the task is not in', {
        reason: 'task_not_allowed',
      });
    return { taskId, projectId: task.projectId ?? rules?.boundProjectId ?? null, allowedIntents: task.allowedIntents };
  }

  /** The key's rules, binding and provider for a call of `model`: refused before anything is reserved. */
  private async prepare(viewer: Viewer, req: GatewayRequest, model: string) {
    const rules = req.rules;
    if (rules && !modelAllowed(rules, model)) throw new ModelNotAllowedError(model);
    const named = req.headers[TASK_HEADER];
    const key = typeof named === 'string' ? named.trim() : '';
    let binding = req.bindings.get(key);
    if (!binding) req.bindings.set(key, (binding = await this.binding(viewer, req.headers, rules)));
    const resolved = await this.deps.providers.resolveModel(viewer.userId, model);
    await this.deps.modelAccess.require(resolved.provider.modelName, { ...viewer, projectId: binding.projectId }); // who may use which models
    return { ...binding, resolved, budgets: rules?.budget ? [rules.budget] : [] };
  }

  private scope(viewer: Viewer, req: GatewayRequest): Scope {
    return { em: req.em.fork() as EntityManager, viewer, meta: req.meta };
  }

  async models(viewer: Viewer, rules: KeyRules | null) {
    const all = await this.deps.providers.modelsFor(viewer.userId);
    const mine = rules ? all.filter((m) => modelAllowed(rules, m.id)) : all;
    return this.deps.modelAccess.filter(mine, (m) => m.model, { ...viewer, projectId: rules?.boundProjectId });
  }

  /** A chat (OpenAI or Anthropic format in), metered; `onEvent` relays the stream as it comes. */
  async chat(
    viewer: Viewer,
    req: GatewayRequest,
    chat: GatewayChat,
    io: { onEvent?: (d: ChatDelta) => void; onReserved?: (b: BudgetState[]) => void; signal?: AbortSignal },
  ): Promise<MeteredResult> {
    const { taskId, projectId, allowedIntents, resolved, budgets } = await this.prepare(viewer, req, chat.model);
    return this.deps.metering.call(this.scope(viewer, req), {
      budgets,
      allowedIntents,
      onReserved: io.onReserved,
      viewer,
      prompt: chat.prompt,
      messages: chat.messages,
      resolved,
      model: chat.model,
      maxTokens: chat.maxTokens,
      passThrough: chat.passThrough,
      taskId,
      projectId,
      systemMessage: chat.system,
      onEvent: io.onEvent,
      signal: io.signal,
    });
  }

  async embed(
    viewer: Viewer,
    r: GatewayRequest,
    req: {
      model: string;
      input: string | string[];
      dimensions?: number | null;
      encoding_format?: 'float' | 'base64' | null;
    },
    signal?: AbortSignal,
  ): Promise<MeteredResult> {
    const { taskId, projectId, allowedIntents, resolved, budgets } = await this.prepare(viewer, r, req.model);
    const inputs = Array.isArray(req.input) ? req.input : [req.input];
    return this.deps.metering.call(this.scope(viewer, r), {
      viewer,
      budgets,
      allowedIntents,
      prompt: inputs.join('\n'),
      messages: inputs.map((content) => ({ role: 'user' as const, content })),
      resolved,
      model: req.model,
      taskId,
      projectId,
      signal,
      embedding: {
        input: req.input,
        ...(req.dimensions ? { dimensions: req.dimensions } : {}),
        ...(req.encoding_format ? { encodingFormat: req.encoding_format } : {}),
      },
    });
  }
}
