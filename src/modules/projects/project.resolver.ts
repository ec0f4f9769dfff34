import type { GraphQLResolveInfo } from 'graphql';
import sql from 'sql-template-tag';
import { Arg, Args, Ctx, FieldResolver, ID, Info, Mutation, Query, Resolver, Root } from 'type-graphql';
import { viewerOf, type Context } from '../../server/context.js';
import { Viewer } from '../../server/viewer.js';
import { Allow } from '../../shared/allow.js';
import { ConnectionType, PageArgs } from '../../shared/connection.js';
import { isUuid, requireUuid } from '../../shared/errors.js';
import { idOf, readModel, type RowOf } from '../../shared/read-model.js';
import { selectedFields } from '../../shared/selection.js';
import { User } from '../identity/user.entity.js';
import { GitBranch } from './git-branch.entity.js';
import {
  AddProjectMemberInput,
  ChangeProjectMemberRoleInput,
  CreateGitBranchInput,
  CreateProjectInput,
  GitBranchRefInput,
  ProjectMemberRefInput,
  ProjectPathInput,
  ProjectWhere,
  RegisterProjectFileInput,
  UpdateProjectInput,
} from './project.inputs.js';
import { ProjectFile } from './project-file.entity.js';
import { ProjectMember, ProjectRole } from './project-member.entity.js';
import { ProjectTemplate } from './project-template.entity.js';
import { Project, ProjectStatus } from './project.entity.js';

const ProjectConnection = ConnectionType(Project);
const ProjectFileConnection = ConnectionType(ProjectFile);

type Row = Record<string, unknown> & { id: string };
const userById = (ctx: Context, info: GraphQLResolveInfo) =>
  ctx.loaders.byId<Row>(readModel(User), selectedFields(info));

@Resolver(() => Project)
@Allow('SIGNED_IN')
export class ProjectResolver {
  @Query(() => Project, { nullable: true, description: 'A project you may see (null otherwise).' })
  async project(
    @Arg('id', () => ID) id: string,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    if (!isUuid(id)) return null;
    return ctx.loaders
      .byId(readModel(Project), selectedFields(info), ctx.services.projects.policy.visible(viewer, 't.id'))
      .load(id.toLowerCase());
  }

  @Query(() => ProjectConnection, { description: 'Projects you own or collaborate on (admins: all). Newest first.' })
  projects(
    @Args() page: PageArgs,
    @Arg('where', () => ProjectWhere, { nullable: true }) where: ProjectWhere | null,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.services.projects.list(viewer, selectedFields(info, ['edges', 'node']), where ?? {}, page);
  }

  @Query(() => [ProjectTemplate])
  projectTemplates(@Ctx() ctx: Context) {
    return ctx.runtime.db.query(
      sql`SELECT id, key, name, description, defaults, created_at AS "createdAt" FROM project_templates ORDER BY key`,
    );
  }

  @FieldResolver(() => User)
  owner(@Root() p: RowOf<Project>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return userById(ctx, info).load(idOf(p.owner)!);
  }

  @FieldResolver(() => [ProjectMember], { description: 'Owner first, then by role.' })
  async members(@Root() p: RowOf<Project>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    const rows = await ctx.loaders
      .byForeignKey<Row>(readModel(ProjectMember), 'project', selectedFields(info), {
        required: ['user', 'role'],
        sort: { property: 'createdAt', direction: 'ASC', type: 'timestamptz' },
      })
      .load(p.id);
    const order = [ProjectRole.OWNER, ProjectRole.MAINTAINER, ProjectRole.CONTRIBUTOR, ProjectRole.VIEWER];
    return rows.sort((a, b) => order.indexOf(a.role as ProjectRole) - order.indexOf(b.role as ProjectRole));
  }

  @FieldResolver(() => ProjectTemplate, { nullable: true })
  template(@Root() p: RowOf<Project>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders.relation(p.template, readModel(ProjectTemplate), selectedFields(info));
  }

  @FieldResolver(() => ProjectRole, { nullable: true, description: 'Your role in the project (admins: OWNER).' })
  myRole(@Root() p: RowOf<Project>, @Ctx() ctx: Context) {
    const viewer = viewerOf(ctx);
    return ctx.loaders
      .custom<string, ProjectRole | null>(`myRole:${viewer.userId}`, (ids) =>
        Promise.all(ids.map((id) => ctx.services.projects.policy.roleOf(viewer, id))),
      )
      .load(p.id);
  }

  @FieldResolver(() => ProjectFileConnection)
  files(@Root() p: RowOf<Project>, @Args() page: PageArgs, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders
      .pagePerParent(readModel(ProjectFile), 'project', selectedFields(info, ['edges', 'node']), page, {
        sort: { property: 'id', direction: 'ASC', type: 'uuid' },
      })
      .load(p.id);
  }

  @FieldResolver(() => [GitBranch])
  branches(@Root() p: RowOf<Project>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders.byForeignKey(readModel(GitBranch), 'project', selectedFields(info)).load(p.id);
  }

  @Mutation(() => Project, {
    description: "You become its OWNER. With templateKey, the template's defaults become the settings.",
  })
  createProject(@Arg('input') input: CreateProjectInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.projects.create(ctx, viewer, input);
  }

  @Mutation(() => Project, { description: 'MAINTAINER or higher.' })
  updateProject(@Arg('input') input: UpdateProjectInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.projects.update(ctx, viewer, input);
  }

  @Mutation(() => Project, { description: 'Read-only until restored. MAINTAINER or higher.' })
  archiveProject(@Arg('id', () => ID) id: string, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.projects.setStatus(ctx, viewer, id, ProjectStatus.ARCHIVED);
  }

  @Mutation(() => Project, { description: 'Back to ACTIVE from ARCHIVED (admins: also from DELETED).' })
  restoreProject(@Arg('id', () => ID) id: string, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.projects.setStatus(ctx, viewer, id, ProjectStatus.ACTIVE);
  }

  @Mutation(() => Project, { description: 'Soft delete: hidden from everyone but admins. OWNER only.' })
  deleteProject(@Arg('id', () => ID) id: string, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.projects.setStatus(ctx, viewer, id, ProjectStatus.DELETED);
  }

  @Mutation(() => ProjectMember, {
    description: 'MAINTAINER+ adds CONTRIBUTORs and VIEWERs; the OWNER appoints MAINTAINERs.',
  })
  addProjectMember(@Arg('input') input: AddProjectMemberInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.projects.addMember(ctx, viewer, input);
  }

  @Mutation(() => ProjectMember)
  changeProjectMemberRole(
    @Arg('input') input: ChangeProjectMemberRoleInput,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
  ) {
    return ctx.services.projects.changeMemberRole(ctx, viewer, input);
  }

  @Mutation(() => Boolean, { description: 'Remove a member, or leave a project yourself.' })
  removeProjectMember(@Arg('input') input: ProjectMemberRefInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.projects.removeMember(ctx, viewer, input);
  }

  @Mutation(() => Project, {
    description: 'OWNER only; the new owner must be a member, the old one stays as MAINTAINER.',
  })
  transferProjectOwnership(@Arg('input') input: ProjectMemberRefInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.projects.transferOwnership(ctx, viewer, input);
  }

  @Allow('SIGNED_IN', 'SERVICE')
  @Mutation(() => ProjectFile, { description: 'Registers a file by path, or updates it when the path exists.' })
  registerProjectFile(@Arg('input') input: RegisterProjectFileInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.projects.registerFile(ctx, viewer, input);
  }

  @Allow('SIGNED_IN', 'SERVICE')
  @Mutation(() => Boolean)
  deleteProjectFile(@Arg('input') input: ProjectPathInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.projects.deleteFile(ctx, viewer, { projectId: requireUuid(input.projectId), path: input.path });
  }

  @Allow('SIGNED_IN', 'SERVICE')
  @Mutation(() => GitBranch)
  createGitBranch(@Arg('input') input: CreateGitBranchInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.projects.createBranch(ctx, viewer, input);
  }

  @Allow('SIGNED_IN', 'SERVICE')
  @Mutation(() => GitBranch)
  markGitBranchMerged(@Arg('input') input: GitBranchRefInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.projects.markBranchMerged(ctx, viewer, input);
  }
}

@Resolver(() => ProjectMember)
@Allow('SIGNED_IN')
export class ProjectMemberResolver {
  @FieldResolver(() => User)
  user(@Root() m: RowOf<ProjectMember>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return userById(ctx, info).load(idOf(m.user)!);
  }
}
