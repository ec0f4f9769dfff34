import type { AnalysisSessionStatus, AnalysisTaskType } from './analysis.entity.js';

/** Tasks were queued (new, released by a failure, or their lease ran out): workers of those types should claim. */
export const ANALYSIS_TASK_QUEUED = 'analysis.taskQueued';
/** A session changed status (to its project's members). */
export const ANALYSIS_SESSION_UPDATED = 'analysis.sessionUpdated';

export interface AnalysisTaskQueuedEvent {
  sessionId: string;
  projectId: string;
  types: AnalysisTaskType[];
  count: number;
}

export interface AnalysisSessionEvent {
  sessionId: string;
  projectId: string;
  status: AnalysisSessionStatus;
}
