import type { AuthChecker } from 'type-graphql';
import { Role } from '../modules/identity/user.entity.js';
import type { Rule } from '../shared/allow.js';
import { ForbiddenError, UnauthenticatedError } from '../shared/errors.js';
import type { Context } from './context.js';

/** The one place where `@Allow` rules are enforced (see src/shared/allow.ts). */
export const authChecker: AuthChecker<Context, Rule> = ({ context, info }, rules) => {
  if (rules.includes('PUBLIC')) return true;
  const viewer = context.viewer;
  if (!viewer) throw new UnauthenticatedError();
  if (viewer.serviceActor) {
    if (rules.includes('SERVICE')) return true;
    throw new ForbiddenError('Service tokens may not run this operation');
  }
  if (viewer.role === Role.ADMIN) return true;
  if (rules.includes('ADMIN') && rules.length === 1) throw new ForbiddenError('Only administrators may do this');
  if (rules.includes('OWN_ACCOUNT')) return true;
  if (rules.length === 0 || rules.includes('SIGNED_IN')) {
    if (viewer.role === Role.OBSERVER && info.parentType.name === 'Mutation') throw new ForbiddenError('Observers cannot change anything');
    return true;
  }
  throw new ForbiddenError();
};
