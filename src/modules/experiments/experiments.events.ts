import type { ExperimentStatus } from './experiment.entity.js';

/** An experiment was created or changed status. */
export const EXPERIMENT_STATUS_CHANGED = 'experiments.statusChanged';

export interface ExperimentEvent {
  experimentId: string;
  projectId: string;
  status: ExperimentStatus;
}
