import { Authorized } from 'type-graphql';

/**
 * Who may run an operation. Every resolver class carries `@Allow('SIGNED_IN')` so a new
 * operation is protected by default; an operation that differs says so on itself.
 * The one checker that reads these is src/server/auth-checker.ts, and
 * test/unit/permissions.test.ts snapshots every operation's rule.
 *
 * - PUBLIC: anyone, signed in or not.
 * - SIGNED_IN: any signed-in person; OBSERVERs only for queries and subscriptions.
 * - OWN_ACCOUNT: any signed-in person, OBSERVERs included (their own account).
 * - ADMIN: administrators only.
 * - SERVICE: also service API tokens (which are refused everywhere else).
 *
 * ADMIN passes every rule but PUBLIC-only sign-in flows, where it is irrelevant.
 */
export type Rule = 'PUBLIC' | 'SIGNED_IN' | 'OWN_ACCOUNT' | 'ADMIN' | 'SERVICE';

export const Allow = (...rules: [Rule, ...Rule[]]) => Authorized<Rule>(...rules);
