import { Agent } from './agent.entity.js';
import type { AgentService } from './agent.service.js';
import { Conversation } from './conversation.entity.js';
import type { ConversationService } from './conversation.service.js';
import type { GovernanceService } from './governance.js';
import { KnowledgeEntry } from './knowledge-entry.entity.js';
import type { KnowledgeService } from './knowledge.service.js';
import { Message } from './message.entity.js';
import { PromptLog } from './prompt-log.entity.js';

/** The ai module's surface: what other modules and src/db/entities.ts may import. */
export const aiEntities = [Agent, Conversation, Message, PromptLog, KnowledgeEntry];

export interface AiServices {
  agents: AgentService;
  conversations: ConversationService;
  knowledge: KnowledgeService;
  /** Prompt governance: which task a call is bound to, and who may change a task's allowed intents. */
  governance: GovernanceService;
}

export type { AgentToolbox, AgentToolOutcome, AgentToolSet, AgentToolStatus, FunctionTool } from './agent-tools.js';
