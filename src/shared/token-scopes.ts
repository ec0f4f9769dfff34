import { ForbiddenError } from './errors.js';
import type { Viewer } from './scope.js';

/**
 * API token scopes: each a named set of operations. A token with scopes may run an
 * operation only when one of its scopes names it (and, with a list of projects, only
 * in those projects: ProjectPolicy applies that). A token without scopes keeps what it
 * always meant: everything its user may do (a service token: every operation that
 * accepts services). Enforced for GraphQL by the one auth checker
 * (src/server/auth-checker.ts) and, for HTTP routes (the AI gateway, MCP), by
 * `tokenAllows`. test/unit/permissions.test.ts snapshots the sets.
 */
export const TOKEN_SCOPES = {
  /** Every query and subscription (what the token's user may read). */
  read: { kinds: ['Query', 'Subscription'], operations: [] },
  /** Every mutation (what the token's user may change). */
  write: { kinds: ['Mutation'], operations: [] },
  containers: {
    kinds: [],
    operations: [
      'container',
      'containers',
      'containerStatusChanged',
      'createContainer',
      'updateContainer',
      'reportContainerStatus',
      'startContainer',
      'stopContainer',
      'sleepContainer',
      'touchContainer',
      'watcher',
      'watchers',
      'reportWatcherRun',
    ],
  },
  analysis: {
    kinds: [],
    operations: [
      'analysisSession',
      'analysisSessions',
      'analysisTaskQueued',
      'createAnalysisSession',
      'claimAnalysisTask',
      'reportAnalysisTask',
      'addAnalysisArtifact',
      'addCodeReviewResult',
    ],
  },
  evaluations: {
    kinds: [],
    operations: [
      'experiment',
      'experiments',
      'experimentStatusChanged',
      'createExperiment',
      'setExperimentStatus',
      'submitEvaluation',
    ],
  },
  mcp: {
    kinds: [],
    operations: [
      'mcpServer',
      'mcpServers',
      'mcpServerStatusChanged',
      'mcpServerHeartbeat',
      'callMcpTool',
      'mcpToolCalls',
      'mcpToolGrants',
    ],
  },
  ai: {
    kinds: [],
    operations: [
      'startConversation',
      'sendMessage',
      'archiveConversation',
      'conversation',
      'conversations',
      'messageAdded',
      'messageStream',
      'searchKnowledge',
      'myUsage',
    ],
  },
  /** What an agent does to the work it was given. */
  work: {
    kinds: [],
    operations: [
      'task',
      'tasks',
      'updateTaskStatus',
      'assignAgent',
      'unassignAgent',
      'requestApproval',
      'registerProjectFile',
      'deleteProjectFile',
      'createGitBranch',
      'markGitBranchMerged',
    ],
  },
} as const satisfies Record<
  string,
  { kinds: readonly ('Query' | 'Mutation' | 'Subscription')[]; operations: readonly string[] }
>;

export type TokenScope = keyof typeof TOKEN_SCOPES;
export const SCOPE_NAMES = Object.keys(TOKEN_SCOPES) as TokenScope[];

export const isTokenScope = (s: string): s is TokenScope => Object.hasOwn(TOKEN_SCOPES, s);

/** Whether one of `scopes` names the operation `kind.operation` (no scopes: every operation). */
export function scopesAllow(scopes: readonly string[] | undefined, kind: string, operation: string): boolean {
  if (!scopes?.length) return true;
  return scopes.some((name) => {
    if (!isTokenScope(name)) return false;
    const s = TOKEN_SCOPES[name];
    return (s.kinds as readonly string[]).includes(kind) || (s.operations as readonly string[]).includes(operation);
  });
}

/**
 * For HTTP routes outside GraphQL (the AI gateway asks `ai`, MCP `mcp`): whether the
 * viewer's token carries `scope` (or has no scopes at all), and, given a project, whether
 * the token may act in it. A signed-in person (no API token) is never limited here.
 */
export function tokenAllows(viewer: Viewer, scope: TokenScope, projectId?: string | null): boolean {
  if (!viewer.apiTokenId) return true;
  if (viewer.scopes?.length && !viewer.scopes.includes(scope)) return false;
  if (projectId && viewer.projectIds?.length && !viewer.projectIds.includes(projectId)) return false;
  return true;
}

/** tokenAllows, or FORBIDDEN naming the scope. */
export function requireTokenScope(viewer: Viewer, scope: TokenScope, projectId?: string | null): void {
  if (!tokenAllows(viewer, scope, projectId))
    throw new ForbiddenError(`This API token's scopes do not allow "${scope}"${projectId ? ' in this project' : ''}`);
}
