import { Agent } from './agent.entity.js';
import { Conversation } from './conversation.entity.js';
import { KnowledgeEntry } from './knowledge-entry.entity.js';
import { Message } from './message.entity.js';
import { PromptLog } from './prompt-log.entity.js';

export const aiEntities = [Agent, Conversation, Message, PromptLog, KnowledgeEntry];
export { aiResolvers, aiSeeds, createAi, type AiServices } from './ai.module.js';
