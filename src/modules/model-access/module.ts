import type { AuditService } from '../audit/index.js';
import { defineModule, type ModuleDeps } from '../define-module.js';
import { modelAccessEntities, type ModelAccessServices } from './index.js';
import { ModelAccessResolver } from './model-access.resolver.js';
import { ModelAccess } from './model-access.service.js';

/** Who may use which models: admin-managed rules by tier, role and project, checked in memory. */
export const modelAccessModule = defineModule({
  name: 'modelAccess',
  entities: modelAccessEntities,
  resolvers: [ModelAccessResolver],
  create: (deps: ModuleDeps<{ audit: AuditService }>): ModelAccessServices => ({ modelAccess: new ModelAccess(deps) }),
});
