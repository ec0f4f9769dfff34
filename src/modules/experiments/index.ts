import { ComparisonReport, Evaluation, Experiment, Promotion } from './experiment.entity.js';
import type { ExperimentService } from './experiment.service.js';
import { Policy, ProjectPolicyLink } from './policy.entity.js';
import { QuarantineRecord, ReevaluationRequest } from './quarantine.entity.js';
import { Baseline, Version, VersionHistory } from './version.entity.js';

/** The experiments module's surface: the three-version flow's versions, baselines, policies, experiments, evaluations, promotions and quarantine. */
export const experimentEntities = [
  Version,
  VersionHistory,
  Baseline,
  Policy,
  ProjectPolicyLink,
  Experiment,
  Evaluation,
  Promotion,
  ComparisonReport,
  QuarantineRecord,
  ReevaluationRequest,
];

export interface ExperimentServices {
  experiments: ExperimentService;
}
