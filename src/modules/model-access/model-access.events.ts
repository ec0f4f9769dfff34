/** Published (inside the change's transaction) when a model access rule was set or cleared: every instance reloads its rules. */
export const MODEL_ACCESS_CHANGED = 'modelAccess.changed';

export interface ModelAccessChanged {
  ruleId: string;
}
