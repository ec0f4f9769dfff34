import { Role } from '../modules/identity/user.entity.js';
import { UnauthenticatedError } from './errors.js';
import type { Viewer } from './scope.js';

/**
 * An administrator acting as themselves. A service token's viewer carries its owner's
 * role but is not a person: it never gets an admin's reach (everyone's rows, every
 * project), only what the operation grants services.
 */
export function isHumanAdmin(viewer: Viewer | null | undefined): boolean {
  return viewer?.role === Role.ADMIN && !viewer.serviceActor;
}

/** The viewer of an operation that `@Allow` already required to be signed in. */
export function requireViewer(viewer: Viewer | null | undefined): Viewer {
  if (!viewer) throw new UnauthenticatedError();
  return viewer;
}
