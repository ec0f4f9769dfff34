import { registerEnumType } from 'type-graphql';

/** The six development agents plus the general assistant. Tasks name them before the ai module's Agent rows exist. */
export enum AgentType {
  DEV_MANAGER = 'DEV_MANAGER',
  PRODUCT_MANAGER = 'PRODUCT_MANAGER',
  DATA_ANALYST = 'DATA_ANALYST',
  SENIOR_ENGINEER = 'SENIOR_ENGINEER',
  ARCHITECT = 'ARCHITECT',
  PLATFORM_ENGINEER = 'PLATFORM_ENGINEER',
  ASSISTANT = 'ASSISTANT',
}
registerEnumType(AgentType, { name: 'AgentType' });
