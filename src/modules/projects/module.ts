import type { AuditService } from '../audit/index.js';
import { defineModule, type ModuleDeps } from '../define-module.js';
import { projectEntities, type ProjectServices } from './index.js';
import { ProjectPolicy } from './project.policy.js';
import { ProjectMemberResolver, ProjectResolver } from './project.resolver.js';
import { seedProjectTemplates } from './project.seed.js';
import { ProjectService } from './project.service.js';

/** Projects, their members and roles, templates, files and branches. */
export const projectsModule = defineModule({
  name: 'projects',
  entities: projectEntities,
  resolvers: [ProjectResolver, ProjectMemberResolver],
  create: (deps: ModuleDeps<{ audit: AuditService }>): ProjectServices => ({
    projects: new ProjectService(deps.db, deps.audit, new ProjectPolicy(deps.db), deps.bus),
  }),
  seeds: [seedProjectTemplates],
});
