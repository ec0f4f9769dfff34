import { AnalysisSession, AnalysisTask, Artifact, CodeReviewResult } from './analysis.entity.js';
import { AnalysisSessionResolver } from './analysis.resolver.js';
import { AnalysisService, type AnalysisDeps } from './analysis.service.js';

/** Production analysis (seed 004): sessions, the task queue workers claim, artifacts and code reviews. */
export const analysisEntities = [AnalysisSession, AnalysisTask, Artifact, CodeReviewResult];
export const analysisResolvers = [AnalysisSessionResolver] as const;

export function createAnalysis(d: AnalysisDeps) {
  return { analysis: new AnalysisService(d) };
}
