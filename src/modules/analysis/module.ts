import type { AuditService } from '../audit/index.js';
import { defineModule, type ModuleDeps } from '../define-module.js';
import type { ProjectService } from '../projects/index.js';
import { AnalysisSessionResolver } from './analysis.resolver.js';
import { AnalysisService } from './analysis.service.js';
import { analysisEntities, type AnalysisServices } from './index.js';

/** Production analysis: sessions of tasks that external workers claim from a queue with service tokens. */
export const analysisModule = defineModule({
  name: 'analysis',
  entities: analysisEntities,
  resolvers: [AnalysisSessionResolver],
  create: (deps: ModuleDeps<{ audit: AuditService; projects: ProjectService }>): AnalysisServices => ({
    analysis: new AnalysisService(deps),
  }),
  jobs: (services) => services.analysis.jobs(),
});
