/**
 * Who may do what in a project changed: a member's role, a member removed, the owner
 * transferred, the project archived or deleted. Caches of access decisions (the AI
 * gateway's task bindings) forget what they hold for the project.
 */
export const PROJECT_ACCESS_CHANGED = 'projects.accessChanged';

export interface ProjectAccessChanged {
  projectId: string;
}
