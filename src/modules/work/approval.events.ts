/** A new approval waits for a decision. */
export const APPROVAL_REQUESTED = 'work.approvalRequested';
/** An approval was approved, rejected or expired. */
export const APPROVAL_DECIDED = 'work.approvalDecided';

export interface ApprovalEvent {
  approvalId: string;
  projectId: string | null;
  /** The requesting user (null for a system actor): never among the deciders, always told of the decision. */
  requestedBy: string | null;
}
