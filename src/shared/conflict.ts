import { UniqueConstraintViolationException } from '@mikro-orm/core';

import { ConflictError } from './errors.js';

/**
 * Runs `work`; when it breaks a unique constraint (a name or pair someone else took, even
 * at the same moment) the caller gets CONFLICT with `message`, not an internal error. The
 * database's constraint is the rule; a check before writing would race it.
 */
export async function conflictOnDuplicate<T>(
  work: () => Promise<T>,
  message: string,
  details?: Record<string, unknown>,
): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof UniqueConstraintViolationException) throw new ConflictError(message, details);
    throw err;
  }
}
