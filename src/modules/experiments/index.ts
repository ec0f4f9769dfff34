import { ComparisonReport, Evaluation, Experiment, Promotion } from './experiment.entity.js';
import { ComparisonReportResolver, EvaluationResolver, ExperimentResolver, PolicyResolver, PromotionResolver, QuarantineResolver, ReevaluationRequestResolver, VersionHistoryResolver, VersionResolver } from './experiment.resolver.js';
import { ExperimentService, type ExperimentDeps } from './experiment.service.js';
import { Policy, ProjectPolicyLink } from './policy.entity.js';
import { QuarantineRecord, ReevaluationRequest } from './quarantine.entity.js';
import { Baseline, Version, VersionHistory } from './version.entity.js';

/** Seed 004's three-version flow: versions, baselines, policies, experiments, evaluations, promotions, quarantine. */
export const experimentEntities = [Version, VersionHistory, Baseline, Policy, ProjectPolicyLink, Experiment, Evaluation, Promotion, ComparisonReport, QuarantineRecord, ReevaluationRequest];
export const experimentResolvers = [ExperimentResolver, VersionResolver, VersionHistoryResolver, EvaluationResolver, PromotionResolver, ComparisonReportResolver, QuarantineResolver, ReevaluationRequestResolver, PolicyResolver] as const;

export function createExperiments(d: ExperimentDeps) {
  return { experiments: new ExperimentService(d) };
}
