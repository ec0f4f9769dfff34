/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
export type ApprovalStatus =
  | 'APPROVED'
  | 'EXPIRED'
  | 'PENDING'
  | 'REJECTED';

export type ContainerStatus =
  | 'CREATING'
  | 'ERROR'
  | 'RUNNING'
  | 'SLEEPING'
  | 'STOPPED';

export type CostAlertType =
  | 'DAILY_80'
  | 'DAILY_90'
  | 'DAILY_100'
  | 'MONTHLY_80'
  | 'MONTHLY_90'
  | 'MONTHLY_100';

export type LoginInput = {
  /** E-mail or username */
  login: string;
  password: string;
  totpCode?: string | null | undefined;
};

export type NotificationPriority =
  | 'HIGH'
  | 'LOW'
  | 'NORMAL'
  | 'URGENT';

export type NotificationType =
  | 'ALERT'
  | 'APPROVAL'
  | 'ERROR'
  | 'INFO'
  | 'STATUS';

export type Role =
  | 'ADMIN'
  | 'OBSERVER'
  | 'USER';

export type DashApprovalFragment = { id: string, status: ApprovalStatus, actionType: string, notes: string | null, createdAt: string, requestedByActor: string | null, requestedBy: { id: string, username: string } | null, decidedBy: { id: string, username: string } | null, project: { id: string, name: string } | null, task: { id: string, title: string } | null };

export type DashCostAlertFragment = { id: string, alertType: CostAlertType, thresholdPercentage: number, spentUsd: string, limitUsd: string, createdAt: string, acknowledged: boolean };

export type DashContainerFragment = { id: string, name: string, status: ContainerStatus, statusMessage: string | null, statusChangedAt: string, project: { id: string, name: string } };

export type DashNotificationFragment = { id: string, title: string, message: string | null, type: NotificationType, priority: NotificationPriority, createdAt: string, readAt: string | null };

export type DashLoginMutationVariables = Exact<{
  input: LoginInput;
}>;


export type DashLoginMutation = { login: { accessToken: string, user: { id: string, username: string, name: string | null, role: Role } } };

export type DashAwaitingQueryVariables = Exact<{ [key: string]: never; }>;


export type DashAwaitingQuery = { approvals: { edges: Array<{ node: { id: string, status: ApprovalStatus, actionType: string, notes: string | null, createdAt: string, requestedByActor: string | null, requestedBy: { id: string, username: string } | null, decidedBy: { id: string, username: string } | null, project: { id: string, name: string } | null, task: { id: string, title: string } | null } }> } };

export type DashSnapshotQueryVariables = Exact<{ [key: string]: never; }>;


export type DashSnapshotQuery = { approvals: { edges: Array<{ node: { id: string, status: ApprovalStatus, actionType: string, notes: string | null, createdAt: string, requestedByActor: string | null, requestedBy: { id: string, username: string } | null, decidedBy: { id: string, username: string } | null, project: { id: string, name: string } | null, task: { id: string, title: string } | null } }> }, costAlerts: { edges: Array<{ node: { id: string, alertType: CostAlertType, thresholdPercentage: number, spentUsd: string, limitUsd: string, createdAt: string, acknowledged: boolean } }> }, containers: { edges: Array<{ node: { id: string, name: string, status: ContainerStatus, statusMessage: string | null, statusChangedAt: string, project: { id: string, name: string } } }> }, notifications: { edges: Array<{ node: { id: string, title: string, message: string | null, type: NotificationType, priority: NotificationPriority, createdAt: string, readAt: string | null } }> } };

export type DashApproveMutationVariables = Exact<{
  id: string | number;
}>;


export type DashApproveMutation = { approveApproval: { id: string, status: ApprovalStatus, actionType: string, notes: string | null, createdAt: string, requestedByActor: string | null, requestedBy: { id: string, username: string } | null, decidedBy: { id: string, username: string } | null, project: { id: string, name: string } | null, task: { id: string, title: string } | null } };

export type DashRejectMutationVariables = Exact<{
  id: string | number;
}>;


export type DashRejectMutation = { rejectApproval: { id: string, status: ApprovalStatus, actionType: string, notes: string | null, createdAt: string, requestedByActor: string | null, requestedBy: { id: string, username: string } | null, decidedBy: { id: string, username: string } | null, project: { id: string, name: string } | null, task: { id: string, title: string } | null } };

export type DashApprovalRequestedSubscriptionVariables = Exact<{ [key: string]: never; }>;


export type DashApprovalRequestedSubscription = { approvalRequested: { id: string, status: ApprovalStatus, actionType: string, notes: string | null, createdAt: string, requestedByActor: string | null, requestedBy: { id: string, username: string } | null, decidedBy: { id: string, username: string } | null, project: { id: string, name: string } | null, task: { id: string, title: string } | null } };

export type DashApprovalDecidedSubscriptionVariables = Exact<{ [key: string]: never; }>;


export type DashApprovalDecidedSubscription = { approvalDecided: { id: string, status: ApprovalStatus, actionType: string, notes: string | null, createdAt: string, requestedByActor: string | null, requestedBy: { id: string, username: string } | null, decidedBy: { id: string, username: string } | null, project: { id: string, name: string } | null, task: { id: string, title: string } | null } };

export type DashCostAlertTriggeredSubscriptionVariables = Exact<{ [key: string]: never; }>;


export type DashCostAlertTriggeredSubscription = { costAlertTriggered: { id: string, alertType: CostAlertType, thresholdPercentage: number, spentUsd: string, limitUsd: string, createdAt: string, acknowledged: boolean } };

export type DashContainerStatusChangedSubscriptionVariables = Exact<{ [key: string]: never; }>;


export type DashContainerStatusChangedSubscription = { containerStatusChanged: { id: string, name: string, status: ContainerStatus, statusMessage: string | null, statusChangedAt: string, project: { id: string, name: string } } };

export type DashNotificationReceivedSubscriptionVariables = Exact<{ [key: string]: never; }>;


export type DashNotificationReceivedSubscription = { notificationReceived: { id: string, title: string, message: string | null, type: NotificationType, priority: NotificationPriority, createdAt: string, readAt: string | null } };

export type UsageMeasuresFragment = { requests: number, inputTokens: number, outputTokens: number, costUsd: string, blocked: number, errors: number };

export type UsagePageQueryVariables = Exact<{
  from: string;
}>;


export type UsagePageQuery = { spend: { rows: Array<{ day: string | null, model: string | null, costUsd: string, requests: number }>, totals: { requests: number, inputTokens: number, outputTokens: number, costUsd: string, blocked: number, errors: number } }, users: { rows: Array<{ requests: number, inputTokens: number, outputTokens: number, costUsd: string, blocked: number, errors: number, user: { id: string, username: string, name: string | null } | null }> }, projects: { rows: Array<{ requests: number, inputTokens: number, outputTokens: number, costUsd: string, blocked: number, errors: number, project: { id: string, name: string } | null }> }, tasks: { rows: Array<{ requests: number, inputTokens: number, outputTokens: number, costUsd: string, blocked: number, errors: number, task: { id: string, title: string } | null }> }, intents: { rows: Array<{ intent: string | null, requests: number, blocked: number, task: { id: string, title: string, allowedIntents: Array<string> } | null }> }, blockedByDay: { rows: Array<{ day: string | null, status: string | null, requests: number }> }, recentBlocked: { edges: Array<{ node: { id: string, createdAt: string, intent: string | null, model: string | null, errorMessage: string | null } }> } };

export type UsageRecordedSubscriptionVariables = Exact<{ [key: string]: never; }>;


export type UsageRecordedSubscription = { usageRecorded: { recordedAt: string } };

export class TypedDocumentString<TResult, TVariables>
  extends String
  implements DocumentTypeDecoration<TResult, TVariables>
{
  __apiType?: NonNullable<DocumentTypeDecoration<TResult, TVariables>['__apiType']>;
  private value: string;
  public __meta__?: Record<string, any> | undefined;

  constructor(value: string, __meta__?: Record<string, any> | undefined) {
    super(value);
    this.value = value;
    this.__meta__ = __meta__;
  }

  override toString(): string & DocumentTypeDecoration<TResult, TVariables> {
    return this.value;
  }
}
export const DashApprovalFragmentDoc = new TypedDocumentString(`
    fragment DashApproval on Approval {
  id
  status
  actionType
  notes
  createdAt
  requestedByActor
  requestedBy {
    id
    username
  }
  decidedBy {
    id
    username
  }
  project {
    id
    name
  }
  task {
    id
    title
  }
}
    `, {"fragmentName":"DashApproval"}) as unknown as TypedDocumentString<DashApprovalFragment, unknown>;
export const DashCostAlertFragmentDoc = new TypedDocumentString(`
    fragment DashCostAlert on CostAlert {
  id
  alertType
  thresholdPercentage
  spentUsd
  limitUsd
  createdAt
  acknowledged
}
    `, {"fragmentName":"DashCostAlert"}) as unknown as TypedDocumentString<DashCostAlertFragment, unknown>;
export const DashContainerFragmentDoc = new TypedDocumentString(`
    fragment DashContainer on Container {
  id
  name
  status
  statusMessage
  statusChangedAt
  project {
    id
    name
  }
}
    `, {"fragmentName":"DashContainer"}) as unknown as TypedDocumentString<DashContainerFragment, unknown>;
export const DashNotificationFragmentDoc = new TypedDocumentString(`
    fragment DashNotification on Notification {
  id
  title
  message
  type
  priority
  createdAt
  readAt
}
    `, {"fragmentName":"DashNotification"}) as unknown as TypedDocumentString<DashNotificationFragment, unknown>;
export const UsageMeasuresFragmentDoc = new TypedDocumentString(`
    fragment UsageMeasures on UsageRow {
  requests
  inputTokens
  outputTokens
  costUsd
  blocked
  errors
}
    `, {"fragmentName":"UsageMeasures"}) as unknown as TypedDocumentString<UsageMeasuresFragment, unknown>;
export const DashLoginDocument = new TypedDocumentString(`
    mutation DashLogin($input: LoginInput!) {
  login(input: $input) {
    accessToken
    user {
      id
      username
      name
      role
    }
  }
}
    `) as unknown as TypedDocumentString<DashLoginMutation, DashLoginMutationVariables>;
export const DashAwaitingDocument = new TypedDocumentString(`
    query DashAwaiting {
  approvals(first: 50, where: {awaitingMe: true, status: [PENDING]}) {
    edges {
      node {
        ...DashApproval
      }
    }
  }
}
    fragment DashApproval on Approval {
  id
  status
  actionType
  notes
  createdAt
  requestedByActor
  requestedBy {
    id
    username
  }
  decidedBy {
    id
    username
  }
  project {
    id
    name
  }
  task {
    id
    title
  }
}`) as unknown as TypedDocumentString<DashAwaitingQuery, DashAwaitingQueryVariables>;
export const DashSnapshotDocument = new TypedDocumentString(`
    query DashSnapshot {
  approvals(first: 50, where: {awaitingMe: true, status: [PENDING]}) {
    edges {
      node {
        ...DashApproval
      }
    }
  }
  costAlerts(first: 20) {
    edges {
      node {
        ...DashCostAlert
      }
    }
  }
  containers(first: 50) {
    edges {
      node {
        ...DashContainer
      }
    }
  }
  notifications(first: 20) {
    edges {
      node {
        ...DashNotification
      }
    }
  }
}
    fragment DashApproval on Approval {
  id
  status
  actionType
  notes
  createdAt
  requestedByActor
  requestedBy {
    id
    username
  }
  decidedBy {
    id
    username
  }
  project {
    id
    name
  }
  task {
    id
    title
  }
}
fragment DashCostAlert on CostAlert {
  id
  alertType
  thresholdPercentage
  spentUsd
  limitUsd
  createdAt
  acknowledged
}
fragment DashContainer on Container {
  id
  name
  status
  statusMessage
  statusChangedAt
  project {
    id
    name
  }
}
fragment DashNotification on Notification {
  id
  title
  message
  type
  priority
  createdAt
  readAt
}`) as unknown as TypedDocumentString<DashSnapshotQuery, DashSnapshotQueryVariables>;
export const DashApproveDocument = new TypedDocumentString(`
    mutation DashApprove($id: ID!) {
  approveApproval(input: {id: $id}) {
    ...DashApproval
  }
}
    fragment DashApproval on Approval {
  id
  status
  actionType
  notes
  createdAt
  requestedByActor
  requestedBy {
    id
    username
  }
  decidedBy {
    id
    username
  }
  project {
    id
    name
  }
  task {
    id
    title
  }
}`) as unknown as TypedDocumentString<DashApproveMutation, DashApproveMutationVariables>;
export const DashRejectDocument = new TypedDocumentString(`
    mutation DashReject($id: ID!) {
  rejectApproval(input: {id: $id}) {
    ...DashApproval
  }
}
    fragment DashApproval on Approval {
  id
  status
  actionType
  notes
  createdAt
  requestedByActor
  requestedBy {
    id
    username
  }
  decidedBy {
    id
    username
  }
  project {
    id
    name
  }
  task {
    id
    title
  }
}`) as unknown as TypedDocumentString<DashRejectMutation, DashRejectMutationVariables>;
export const DashApprovalRequestedDocument = new TypedDocumentString(`
    subscription DashApprovalRequested {
  approvalRequested {
    ...DashApproval
  }
}
    fragment DashApproval on Approval {
  id
  status
  actionType
  notes
  createdAt
  requestedByActor
  requestedBy {
    id
    username
  }
  decidedBy {
    id
    username
  }
  project {
    id
    name
  }
  task {
    id
    title
  }
}`) as unknown as TypedDocumentString<DashApprovalRequestedSubscription, DashApprovalRequestedSubscriptionVariables>;
export const DashApprovalDecidedDocument = new TypedDocumentString(`
    subscription DashApprovalDecided {
  approvalDecided {
    ...DashApproval
  }
}
    fragment DashApproval on Approval {
  id
  status
  actionType
  notes
  createdAt
  requestedByActor
  requestedBy {
    id
    username
  }
  decidedBy {
    id
    username
  }
  project {
    id
    name
  }
  task {
    id
    title
  }
}`) as unknown as TypedDocumentString<DashApprovalDecidedSubscription, DashApprovalDecidedSubscriptionVariables>;
export const DashCostAlertTriggeredDocument = new TypedDocumentString(`
    subscription DashCostAlertTriggered {
  costAlertTriggered {
    ...DashCostAlert
  }
}
    fragment DashCostAlert on CostAlert {
  id
  alertType
  thresholdPercentage
  spentUsd
  limitUsd
  createdAt
  acknowledged
}`) as unknown as TypedDocumentString<DashCostAlertTriggeredSubscription, DashCostAlertTriggeredSubscriptionVariables>;
export const DashContainerStatusChangedDocument = new TypedDocumentString(`
    subscription DashContainerStatusChanged {
  containerStatusChanged {
    ...DashContainer
  }
}
    fragment DashContainer on Container {
  id
  name
  status
  statusMessage
  statusChangedAt
  project {
    id
    name
  }
}`) as unknown as TypedDocumentString<DashContainerStatusChangedSubscription, DashContainerStatusChangedSubscriptionVariables>;
export const DashNotificationReceivedDocument = new TypedDocumentString(`
    subscription DashNotificationReceived {
  notificationReceived {
    ...DashNotification
  }
}
    fragment DashNotification on Notification {
  id
  title
  message
  type
  priority
  createdAt
  readAt
}`) as unknown as TypedDocumentString<DashNotificationReceivedSubscription, DashNotificationReceivedSubscriptionVariables>;
export const UsagePageDocument = new TypedDocumentString(`
    query UsagePage($from: DateTime!) {
  spend: usageReport(groupBy: [DAY, MODEL], where: {from: $from}, first: 1000) {
    rows {
      day
      model
      costUsd
      requests
    }
    totals {
      requests
      inputTokens
      outputTokens
      costUsd
      blocked
      errors
    }
  }
  users: usageReport(groupBy: [USER], where: {from: $from}, first: 5) {
    rows {
      user {
        id
        username
        name
      }
      ...UsageMeasures
    }
  }
  projects: usageReport(groupBy: [PROJECT], where: {from: $from}, first: 5) {
    rows {
      project {
        id
        name
      }
      ...UsageMeasures
    }
  }
  tasks: usageReport(groupBy: [TASK], where: {from: $from}, first: 5) {
    rows {
      task {
        id
        title
      }
      ...UsageMeasures
    }
  }
  intents: usageReport(groupBy: [TASK, INTENT], where: {from: $from}, first: 200) {
    rows {
      task {
        id
        title
        allowedIntents
      }
      intent
      requests
      blocked
    }
  }
  blockedByDay: usageReport(
    groupBy: [DAY, STATUS]
    where: {from: $from}
    first: 100
  ) {
    rows {
      day
      status
      requests
    }
  }
  recentBlocked: promptLogs(first: 10, where: {status: [BLOCKED]}) {
    edges {
      node {
        id
        createdAt
        intent
        model
        errorMessage
      }
    }
  }
}
    fragment UsageMeasures on UsageRow {
  requests
  inputTokens
  outputTokens
  costUsd
  blocked
  errors
}`) as unknown as TypedDocumentString<UsagePageQuery, UsagePageQueryVariables>;
export const UsageRecordedDocument = new TypedDocumentString(`
    subscription UsageRecorded {
  usageRecorded {
    recordedAt
  }
}
    `) as unknown as TypedDocumentString<UsageRecordedSubscription, UsageRecordedSubscriptionVariables>;