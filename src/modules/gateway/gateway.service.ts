import type { EntityManager } from '@mikro-orm/postgresql';
import type { IncomingHttpHeaders } from 'node:http';
import { BadInputError, UnauthenticatedError, requireUuid } from '../../shared/errors.js';
import type { RequestMeta, Scope, Viewer } from '../../shared/scope.js';
import type { ChatDelta } from '../billing/llm.js';
import type { MeteredResult, MeteringService } from '../billing/metering.service.js';
import type { ProviderService } from '../billing/provider.service.js';
import type { Authenticator } from '../identity/authenticate.js';
import { API_TOKEN_PREFIX } from '../identity/credential.service.js';
import { ProjectRole } from '../projects/project-member.entity.js';
import type { TaskPolicy } from '../work/task.policy.js';
import type { GatewayChat } from './openai-format.js';

export interface GatewayDeps {
  authenticator: Pick<Authenticator, 'fromToken'>;
  providers: Pick<ProviderService, 'resolveModel' | 'modelsFor'>;
  metering: Pick<MeteringService, 'call'>;
  taskPolicy: Pick<TaskPolicy, 'require'>;
}

/** One gateway request: its headers, metadata and the unit of work to fork. */
export interface GatewayRequest {
  headers: IncomingHttpHeaders;
  meta: RequestMeta;
  em: EntityManager;
}

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
  constructor(private readonly d: GatewayDeps) {}

  async authenticate(headers: IncomingHttpHeaders): Promise<Viewer> {
    const auth = headers.authorization;
    const apiKey = headers['x-api-key'];
    let token: string | undefined;
    if (typeof auth === 'string' && auth) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
      if (!m) throw new UnauthenticatedError('Authorization must be "Bearer <Steward API token>"');
      token = m[1];
    } else if (typeof apiKey === 'string' && apiKey) token = apiKey.trim();
    if (!token) throw new UnauthenticatedError('Give a Steward API token as "Authorization: Bearer <token>" or "x-api-key: <token>"');
    if (!token.startsWith(API_TOKEN_PREFIX)) throw new UnauthenticatedError(`The gateway takes Steward API tokens (${API_TOKEN_PREFIX}…): create one with createApiToken`);
    return this.d.authenticator.fromToken(token);
  }

  /** The task named by X-Steward-Task, with its project: the caller must be a contributor to it. */
  async binding(viewer: Viewer, headers: IncomingHttpHeaders): Promise<{ taskId: string | null; projectId: string | null }> {
    const given = headers[TASK_HEADER];
    if (given === undefined) return { taskId: null, projectId: null };
    if (typeof given !== 'string') throw new BadInputError('X-Steward-Task: give one task id', { field: TASK_HEADER });
    const taskId = requireUuid(given.trim(), TASK_HEADER);
    const task = await this.d.taskPolicy.require(viewer, taskId, ProjectRole.CONTRIBUTOR);
    return { taskId, projectId: task.projectId };
  }

  private scope(viewer: Viewer, req: GatewayRequest): Scope {
    return { em: req.em.fork() as EntityManager, viewer, meta: req.meta };
  }

  models(viewer: Viewer) {
    return this.d.providers.modelsFor(viewer.userId);
  }

  /** A chat (OpenAI or Anthropic format in), metered; `onEvent` relays the stream as it comes. */
  async chat(viewer: Viewer, req: GatewayRequest, chat: GatewayChat, io: { onEvent?: (d: ChatDelta) => void; signal?: AbortSignal }): Promise<MeteredResult> {
    const { taskId, projectId } = await this.binding(viewer, req.headers);
    const resolved = await this.d.providers.resolveModel(viewer.userId, chat.model);
    return this.d.metering.call(this.scope(viewer, req), {
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

  async embed(viewer: Viewer, r: GatewayRequest, req: { model: string; input: string | string[]; dimensions?: number | null; encoding_format?: 'float' | 'base64' | null }, signal?: AbortSignal): Promise<MeteredResult> {
    const { taskId, projectId } = await this.binding(viewer, r.headers);
    const resolved = await this.d.providers.resolveModel(viewer.userId, req.model);
    const inputs = Array.isArray(req.input) ? req.input : [req.input];
    return this.d.metering.call(this.scope(viewer, r), {
      viewer,
      prompt: inputs.join('\n'),
      messages: inputs.map((content) => ({ role: 'user' as const, content })),
      resolved,
      model: req.model,
      taskId,
      projectId,
      signal,
      embedding: { input: req.input, ...(req.dimensions ? { dimensions: req.dimensions } : {}), ...(req.encoding_format ? { encodingFormat: req.encoding_format } : {}) },
    });
  }
}
