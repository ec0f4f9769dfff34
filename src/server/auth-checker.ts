import type { AuthChecker } from 'type-graphql';

import { Role } from '../modules/identity/user.entity.js';
import type { Rule } from '../shared/allow.js';
import { ForbiddenError, UnauthenticatedError } from '../shared/errors.js';
import { scopesAllow } from '../shared/token-scopes.js';
import { isHumanAdmin } from '../shared/viewer.js';
import { uncountedViewer, type Context } from './context.js';

const ROOTS = new Set(['Query', 'Mutation', 'Subscription']);

/**
 * The one place where `@Allow` rules are enforced (see src/shared/allow.ts). Rules guard
 * operations, i.e. root fields. A relation below them (Task.project, Approval.requestedBy)
 * is reachable only through an operation that already let the viewer in, and what it may
 * see there is the services' visibility rules' job; so nested fields pass, whoever asks
 * (a service token receiving the Task it just changed included). An API token's scopes
 * (src/shared/token-scopes.ts) limit the operations it runs, here too.
 */
export const authChecker: AuthChecker<Context, Rule> = ({ context, info }, rules) => {
  if (rules.includes('PUBLIC') || !ROOTS.has(info.parentType.name)) return true;
  const viewer = uncountedViewer(context);
  if (!viewer) throw new UnauthenticatedError();
  if (viewer.scopes?.length && !scopesAllow(viewer.scopes, info.parentType.name, info.fieldName)) {
    throw new ForbiddenError(`This API token's scopes (${viewer.scopes.join(', ')}) do not allow ${info.fieldName}`);
  }
  if (viewer.serviceActor) {
    if (rules.includes('SERVICE')) return true;
    throw new ForbiddenError('Service tokens may not run this operation');
  }
  if (isHumanAdmin(viewer)) return true;
  if (rules.includes('ADMIN') && rules.length === 1) throw new ForbiddenError('Only administrators may do this');
  if (rules.includes('OWN_ACCOUNT')) return true;
  if (rules.length === 0 || rules.includes('SIGNED_IN')) {
    if (viewer.role === Role.OBSERVER && info.parentType.name === 'Mutation')
      throw new ForbiddenError('Observers cannot change anything');
    return true;
  }
  throw new ForbiddenError();
};
