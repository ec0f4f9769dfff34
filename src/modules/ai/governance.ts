import sql from 'sql-template-tag';
import { Query, Resolver } from 'type-graphql';
import type { SqlClient } from '../../db/sql.js';
import { Allow } from '../../shared/allow.js';
import { BadInputError, ForbiddenError, NotFoundError } from '../../shared/errors.js';
import type { Viewer } from '../../shared/scope.js';
import { INTENTS, validateIntents } from '../../shared/intent-classifier.js';

export { INTENTS, validateIntents };

/**
 * Prompt governance's binding rule, in one place (conversations use it; the AI gateway
 * uses it for X-Steward-Task): an AI call may be bound only to a task the caller is
 * actively assigned to, so nobody is judged against a colleague's task, nor picks a
 * task whose intents suit them. With GOVERNANCE_REQUIRED, a call without a task is
 * refused: refusing is explainable and cannot be dodged, where classifying against
 * "all my assigned tasks" would judge a prompt by whichever unrelated task allows the
 * most (and leave a user with no task ungoverned).
 */
export class GovernanceService {
  constructor(private readonly d: { db: SqlClient; config: { GOVERNANCE_REQUIRED: boolean } }) {}

  /** The task's allowed intents (empty: anything goes), or FORBIDDEN / NOT_FOUND / BAD_USER_INPUT when the call may not be bound so. */
  async bind(
    viewer: Viewer,
    taskId: string | null | undefined,
  ): Promise<{ taskId: string | null; allowedIntents: string[] }> {
    if (!taskId) {
      if (this.d.config.GOVERNANCE_REQUIRED)
        throw BadInputError.field(
          'taskId',
          'prompt governance is required here: bind the call to a task you are assigned to',
        );
      return { taskId: null, allowedIntents: [] };
    }
    const row = await this.d.db.one<{ allowed_intents: string[]; assigned: boolean }>(sql`
      SELECT t.allowed_intents,
             EXISTS (SELECT 1 FROM task_assignees a WHERE a.task_id = t.id AND a.user_id = ${viewer.userId}::uuid AND a.active) AS assigned
        FROM tasks t WHERE t.id = ${taskId}::uuid AND t.deleted_at IS NULL`);
    if (!row) throw new NotFoundError('Task', taskId);
    // A service actor (an agent) is bound by the task it was given, not by assignment.
    if (!row.assigned && !viewer.serviceActor)
      throw new ForbiddenError('An AI call may be bound only to a task you are assigned to');
    return { taskId, allowedIntents: row.allowed_intents ?? [] };
  }
}

@Resolver()
@Allow('SIGNED_IN')
export class GovernanceResolver {
  @Query(() => [String], {
    description: "The intents prompt governance classifies prompts into (what a task's allowedIntents may name).",
  })
  intentVocabulary(): string[] {
    return [...INTENTS];
  }
}
