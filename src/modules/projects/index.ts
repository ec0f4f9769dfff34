import type { SqlClient } from '../../db/sql.js';
import type { AuditService } from '../audit/audit.service.js';
import { GitBranch } from './git-branch.entity.js';
import { ProjectFile } from './project-file.entity.js';
import { ProjectMember } from './project-member.entity.js';
import { ProjectTemplate } from './project-template.entity.js';
import { Project } from './project.entity.js';
import { ProjectPolicy } from './project.policy.js';
import { ProjectMemberResolver, ProjectResolver } from './project.resolver.js';
import { seedProjectTemplates } from './project.seed.js';
import { ProjectService } from './project.service.js';

export const projectEntities = [Project, ProjectMember, ProjectTemplate, ProjectFile, GitBranch];
export const projectResolvers = [ProjectResolver, ProjectMemberResolver] as const;
export const projectSeeds = [seedProjectTemplates];

export function createProjects(d: { db: SqlClient; audit: AuditService }) {
  return new ProjectService(d.db, d.audit, new ProjectPolicy(d.db));
}

export { Project, ProjectStatus } from './project.entity.js';
export { ProjectMember, ProjectRole } from './project-member.entity.js';
export { ProjectPolicy, atLeast } from './project.policy.js';
