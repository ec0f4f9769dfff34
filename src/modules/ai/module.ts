import type { AuditService } from '../audit/index.js';
import type { MeteringService, ProviderService } from '../billing/index.js';
import { defineModule, type ModuleDeps } from '../define-module.js';
import type { ModelAccess } from '../model-access/index.js';
import type { ProjectService } from '../projects/index.js';
import type { TaskPolicy } from '../work/index.js';
import type { AgentToolbox } from './agent-tools.js';
import { AgentResolver } from './agent.resolver.js';
import { seedAgents } from './agent.seed.js';
import { AgentService } from './agent.service.js';
import { ConversationResolver, MessageResolver } from './conversation.resolver.js';
import { ConversationService } from './conversation.service.js';
import { GovernanceService } from './governance.js';
import { GovernanceResolver } from './governance.resolver.js';
import { aiEntities, type AiServices } from './index.js';
import { KnowledgeResolver } from './knowledge.resolver.js';
import { KnowledgeService } from './knowledge.service.js';

/** Agents, conversations and their messages, the knowledge base. */
export const aiModule = defineModule({
  name: 'ai',
  entities: aiEntities,
  resolvers: [AgentResolver, ConversationResolver, MessageResolver, KnowledgeResolver, GovernanceResolver],
  create(
    deps: ModuleDeps<{
      audit: AuditService;
      projects: ProjectService;
      taskPolicy: TaskPolicy;
      metering: Pick<MeteringService, 'call'>;
      modelAccess: ModelAccess;
      providers: ProviderService;
      /** The MCP tools an agent's model may call (the mcp module's). */
      agentTools: AgentToolbox;
    }>,
  ): AiServices {
    const knowledge = new KnowledgeService(deps);
    const agents = new AgentService(deps);
    const governance = new GovernanceService(deps);
    const conversations = new ConversationService({ ...deps, knowledge, governance });
    return { agents, conversations, knowledge, governance };
  },
  /** The seven agents (inserted when missing, never overwritten). */
  seeds: [seedAgents],
});
