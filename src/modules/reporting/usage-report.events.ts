/**
 * Sent by PostgreSQL itself (the trigger prompt_logs_usage_recorded, see the usage
 * reporting migration) once per statement that records AI calls, whichever code path
 * recorded them. `userIds` is null for bulk loads (more than 50 users at once).
 */
export const USAGE_RECORDED = 'usage.recorded';

export interface UsageRecordedEvent {
  userIds: string[] | null;
  projectIds: string[];
}
