import { GitBranch } from './git-branch.entity.js';
import { ProjectFile } from './project-file.entity.js';
import { ProjectMember } from './project-member.entity.js';
import { ProjectTemplate } from './project-template.entity.js';
import { Project } from './project.entity.js';
import type { ProjectService } from './project.service.js';

/** The projects module's surface: what other modules and src/db/entities.ts may import. */
export const projectEntities = [Project, ProjectMember, ProjectTemplate, ProjectFile, GitBranch];

export interface ProjectServices {
  projects: ProjectService;
}

export { Project, ProjectStatus } from './project.entity.js';
export { ProjectMember, ProjectRole } from './project-member.entity.js';
export { ProjectPolicy, atLeast } from './project.policy.js';
export { PROJECT_ACCESS_CHANGED, type ProjectAccessChanged } from './project.events.js';
export type { ProjectService } from './project.service.js';
