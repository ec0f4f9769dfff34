import { Authorized, getMetadataStorage } from 'type-graphql';

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

/**
 * On a method: that operation's rule. On a resolver class: the rule of each of its
 * operations (queries, mutations, subscriptions) that has none of its own.
 *
 * Rules guard operations only: the checker lets every nested field through (see
 * auth-checker.ts), and the class's rule leaves its field resolvers without one, so that
 * type-graphql runs no auth middleware around them (why, measured:
 * docs/decisions/001-operation-rules-without-field-middleware.md).
 */
export function Allow(...rules: [Rule, ...Rule[]]): MethodDecorator & ClassDecorator {
  const authorized = Authorized<Rule>(...rules);
  return ((target: object, property?: string | symbol, descriptor?: PropertyDescriptor) => {
    if (property !== undefined) return (authorized as MethodDecorator)(target, property, descriptor!);
    (authorized as ClassDecorator)(target as Function);
    exemptFieldResolvers(target as Function);
  }) as MethodDecorator & ClassDecorator;
}

/** The class's field resolvers (declared by now: member decorators run before class decorators) without a rule of their own. */
function exemptFieldResolvers(resolverClass: Function): void {
  const storage = getMetadataStorage();
  for (const { target, methodName } of storage.fieldResolvers) {
    if (target !== resolverClass) continue;
    if (storage.authorizedFields.some((a) => a.target === target && a.fieldName === methodName)) continue;
    storage.collectAuthorizedFieldMetadata({ target, fieldName: methodName, roles: undefined as unknown as Rule[] });
  }
}
