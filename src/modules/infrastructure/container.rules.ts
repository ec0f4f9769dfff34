import { BadInputError } from '../../shared/errors.js';
import { ContainerStatus } from './container.entity.js';

const { CREATING, RUNNING, SLEEPING, STOPPED, ERROR } = ContainerStatus;

/**
 * The container lifecycle: from each status, where it may go. Anything may fail (ERROR);
 * only a RUNNING container sleeps; a SLEEPING or STOPPED one starts again (RUNNING); a
 * failed one is recreated (CREATING), restarted or stopped. Reporting the status a
 * container already has is no move: it is accepted as a repeated report.
 */
export const CONTAINER_TRANSITIONS: Readonly<Record<ContainerStatus, readonly ContainerStatus[]>> = {
  [CREATING]: [RUNNING, STOPPED, ERROR],
  [RUNNING]: [SLEEPING, STOPPED, ERROR],
  [SLEEPING]: [RUNNING, STOPPED, ERROR],
  [STOPPED]: [RUNNING, ERROR],
  [ERROR]: [CREATING, RUNNING, STOPPED],
};

export const canMove = (from: ContainerStatus, to: ContainerStatus): boolean =>
  from === to || CONTAINER_TRANSITIONS[from].includes(to);

/** BAD_USER_INPUT unless `from` may become `to`. */
export function requireMove(from: ContainerStatus, to: ContainerStatus): void {
  if (!canMove(from, to)) {
    throw new BadInputError(
      `A ${from} container cannot become ${to} (from ${from}: ${CONTAINER_TRANSITIONS[from].join(', ')})`,
      { from, to },
    );
  }
}

/** What members may ask for: start, stop, sleep. */
export const REQUESTABLE = [RUNNING, STOPPED, SLEEPING] as const;
