import { AnalysisSession, AnalysisTask, Artifact, CodeReviewResult } from './analysis.entity.js';
import type { AnalysisService } from './analysis.service.js';

/** The analysis module's surface: sessions, the task queue workers claim, artifacts and code reviews. */
export const analysisEntities = [AnalysisSession, AnalysisTask, Artifact, CodeReviewResult];

export interface AnalysisServices {
  analysis: AnalysisService;
}
