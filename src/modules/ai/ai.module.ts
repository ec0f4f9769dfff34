import { GovernanceResolver, GovernanceService } from './governance.js';
import type { SqlClient } from '../../db/sql.js';
import type { EventBus } from '../../events/bus.js';
import type { Logger } from '../../shared/logger.js';
import type { AuditService } from '../audit/audit.service.js';
import type { MeteringService } from '../billing/metering.service.js';
import type { ProjectService } from '../projects/project.service.js';
import type { TaskPolicy } from '../work/task.policy.js';
import { AgentResolver } from './agent.resolver.js';
import { seedAgents } from './agent.seed.js';
import { AgentService } from './agent.service.js';
import { ConversationResolver, MessageResolver } from './conversation.resolver.js';
import { ConversationService } from './conversation.service.js';
import { KnowledgeResolver } from './knowledge.resolver.js';
import { KnowledgeService } from './knowledge.service.js';

/** The module's GraphQL resolvers: agents, conversations and their messages, the knowledge base. */
export const aiResolvers = [AgentResolver, ConversationResolver, MessageResolver, KnowledgeResolver, GovernanceResolver] as const;

/** Idempotent reference data: the seven agents (inserted when missing, never overwritten). */
export const aiSeeds = [seedAgents];

export interface AiDeps {
  db: SqlClient;
  bus: EventBus;
  audit: AuditService;
  logger: Logger;
  projects: ProjectService;
  taskPolicy: TaskPolicy;
  /** The metered pipeline every AI call goes through (billing module). */
  metering: Pick<MeteringService, 'call'>;
  config: { GOVERNANCE_REQUIRED: boolean };
}

/** Services: `agents`, `conversations`, `knowledge`. */
export function createAi(d: AiDeps) {
  const knowledge = new KnowledgeService(d);
  const agents = new AgentService(d);
  const governance = new GovernanceService(d);
  const conversations = new ConversationService({ ...d, knowledge, governance });
  return { agents, conversations, knowledge, governance };
}

export type AiServices = ReturnType<typeof createAi>;
