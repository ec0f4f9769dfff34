import { ModelAccessRule } from './model-access-rule.entity.js';
import type { ModelAccess } from './model-access.service.js';

/** The model-access module's surface: who may use which models. */
export const modelAccessEntities = [ModelAccessRule];

export interface ModelAccessServices {
  /** Model allow-lists by tier, role and project, held in memory; asked by the gateway and sendMessage. */
  modelAccess: ModelAccess;
}

export { ModelAccessRule } from './model-access-rule.entity.js';
export { ModelNotAllowedError, type ModelAccess, type ModelCaller } from './model-access.service.js';
export { MODEL_ACCESS_CHANGED, type ModelAccessChanged } from './model-access.events.js';
