import type { AuditService } from '../audit/index.js';
import { defineModule, type ModuleDeps } from '../define-module.js';
import type { ProjectService } from '../projects/index.js';
import type { ApprovalService } from '../work/index.js';
import {
  ComparisonReportResolver,
  EvaluationResolver,
  ExperimentResolver,
  PolicyResolver,
  PromotionResolver,
  QuarantineResolver,
  ReevaluationRequestResolver,
  VersionHistoryResolver,
  VersionResolver,
} from './experiment.resolver.js';
import { ExperimentService } from './experiment.service.js';
import { experimentEntities, type ExperimentServices } from './index.js';

/** Versions V1–V3 of a project's model config, experiments judged against baselines, promotions through approvals, quarantine. */
export const experimentsModule = defineModule({
  name: 'experiments',
  entities: experimentEntities,
  resolvers: [
    ExperimentResolver,
    VersionResolver,
    VersionHistoryResolver,
    EvaluationResolver,
    PromotionResolver,
    ComparisonReportResolver,
    QuarantineResolver,
    ReevaluationRequestResolver,
    PolicyResolver,
  ],
  create: (
    deps: ModuleDeps<{ audit: AuditService; projects: ProjectService; approvals: ApprovalService }>,
  ): ExperimentServices => ({ experiments: new ExperimentService(deps) }),
});
