import { IsIn, IsUUID, IsUrl, Length, Matches, Max, MaxLength, Min } from 'class-validator';
import { GraphQLJSONObject } from 'graphql-scalars';
import { Field, Float, ID, InputType } from 'type-graphql';
import { AgentType } from '../ai/agent.entity.js';
import { ProjectRole } from './project-member.entity.js';
import { ProjectStatus } from './project.entity.js';

@InputType()
export class CreateProjectInput {
  @Field() @Length(1, 200) name!: string;
  @Field(() => String, { nullable: true }) @MaxLength(5000) description?: string | null;
  @Field(() => String, { nullable: true, description: 'One of projectTemplates; its defaults become the settings' })
  @MaxLength(100)
  templateKey?: string | null;
  @Field(() => GraphQLJSONObject, { nullable: true, description: 'Merged over the template defaults' })
  settings?: Record<string, unknown> | null;
  @Field(() => String, { nullable: true }) @IsUrl({ require_tld: false }) @MaxLength(500) gitRepoUrl?: string | null;
}

@InputType()
export class UpdateProjectInput {
  @Field(() => ID) @IsUUID() id!: string;
  @Field(() => String, { nullable: true }) @Length(1, 200) name?: string | null;
  @Field(() => String, { nullable: true }) @MaxLength(5000) description?: string | null;
  @Field(() => GraphQLJSONObject, { nullable: true }) settings?: Record<string, unknown> | null;
  @Field(() => String, { nullable: true }) @IsUrl({ require_tld: false }) @MaxLength(500) gitRepoUrl?: string | null;
}

@InputType()
export class AddProjectMemberInput {
  @Field(() => ID) @IsUUID() projectId!: string;
  @Field(() => ID) @IsUUID() userId!: string;
  @Field(() => ProjectRole, { description: 'Not OWNER: use transferProjectOwnership' }) role!: ProjectRole;
}

@InputType()
export class ProjectMemberRefInput {
  @Field(() => ID) @IsUUID() projectId!: string;
  @Field(() => ID) @IsUUID() userId!: string;
}

@InputType()
export class ProjectWhere {
  @Field(() => [ProjectStatus], { nullable: true, description: 'Default: ACTIVE and ARCHIVED' }) status?:
    ProjectStatus[] | null;
  @Field(() => String, { nullable: true, description: 'Matches the name' }) @MaxLength(100) search?: string | null;
}

@InputType()
export class RegisterProjectFileInput {
  @Field(() => ID) @IsUUID() projectId!: string;
  @Field({ description: 'Relative path, unique in the project' })
  @Length(1, 1000)
  @Matches(/^(?!\/)(?!.*(^|\/)\.\.(\/|$)).+$/, { message: 'path must be relative and must not contain ..' })
  path!: string;
  @Field(() => String, { nullable: true }) @MaxLength(50) fileType?: string | null;
  @Field(() => Float, { nullable: true }) @Min(0) @Max(Number.MAX_SAFE_INTEGER) sizeBytes?: number | null;
  @Field(() => String, { nullable: true })
  @Matches(/^[0-9a-f]{64}$/, { message: 'sha256 must be 64 hex characters' })
  sha256?: string | null;
  @Field(() => AgentType, { nullable: true }) createdByAgent?: AgentType | null;
}

@InputType()
export class ProjectPathInput {
  @Field(() => ID) @IsUUID() projectId!: string;
  @Field() @Length(1, 1000) path!: string;
}

@InputType()
export class CreateGitBranchInput {
  @Field(() => ID) @IsUUID() projectId!: string;
  @Field()
  @Length(1, 250)
  @Matches(/^(?!\/)(?!.*\.\.)[\w./-]+$/, { message: 'name is not a valid branch name' })
  name!: string;
  @Field(() => AgentType, { nullable: true }) createdByAgent?: AgentType | null;
}

@InputType()
export class GitBranchRefInput {
  @Field(() => ID) @IsUUID() projectId!: string;
  @Field() @Length(1, 250) name!: string;
}

export const MEMBER_ROLES = [ProjectRole.MAINTAINER, ProjectRole.CONTRIBUTOR, ProjectRole.VIEWER];

@InputType()
export class ChangeProjectMemberRoleInput {
  @Field(() => ID) @IsUUID() projectId!: string;
  @Field(() => ID) @IsUUID() userId!: string;
  @Field(() => ProjectRole)
  @IsIn(MEMBER_ROLES, { message: 'role must be MAINTAINER, CONTRIBUTOR or VIEWER' })
  role!: ProjectRole;
}
