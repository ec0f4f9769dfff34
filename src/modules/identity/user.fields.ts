import sql from 'sql-template-tag';
import type { GraphQLResolveInfo } from 'graphql';
import { Ctx, FieldResolver, Float, Info, Resolver, Root } from 'type-graphql';
import { viewerOf, type Context } from '../../server/context.js';
import { Allow } from '../../shared/allow.js';
import type { RowOf } from '../../shared/read-model.js';
import type { Viewer } from '../../shared/scope.js';
import { isHumanAdmin } from '../../shared/viewer.js';
import { User } from './user.entity.js';

/**
 * Who sees which of a user's fields: the one place these rules live (the field resolvers
 * below apply them; test/unit/permissions.test.ts snapshots them).
 *
 * - EVERYONE (signed in): what colleagues need to recognise someone: id, username, name, role, status…
 * - SHARED_PROJECT: the user themself, admins, and those who share a (not deleted) project with them: e-mail.
 * - SELF: the user themself and admins: governance and security fields.
 *
 * A field listed here answers null to whoever may not see it. Service tokens see EVERYONE's
 * fields only (and their creator's own account through `me`).
 */
export type UserFieldRule = 'SHARED_PROJECT' | 'SELF';

export const USER_FIELD_RULES = {
  email: 'SHARED_PROJECT',
  deviationScore: 'SELF',
  blockedReason: 'SELF',
  blockedAt: 'SELF',
  lastLoginAt: 'SELF',
  lastActivityAt: 'SELF',
  totpEnabled: 'SELF',
} as const satisfies Record<string, UserFieldRule>;

export interface UserRelation {
  self: boolean;
  sharesProject: boolean;
}

/** Whether `viewer`, standing in `relation` to the user, sees a field under `rule`. */
export function userFieldAllowed(viewer: Viewer, rule: UserFieldRule, relation: UserRelation): boolean {
  if (isHumanAdmin(viewer) || relation.self) return true;
  if (viewer.serviceActor) return false;
  return rule === 'SHARED_PROJECT' && relation.sharesProject;
}

/** Which of `ids` share a project (not deleted) with the viewer: one statement per batch. */
function sharesProject(ctx: Context, viewer: Viewer, userId: string): Promise<boolean> {
  return ctx.loaders
    .custom<string, boolean>(`shares-project:${viewer.userId}`, async (ids) => {
      const rows = await ctx.runtime.db.query<{ id: string }>(sql`
        SELECT DISTINCT theirs.user_id AS id FROM project_members mine
          JOIN project_members theirs ON theirs.project_id = mine.project_id
          JOIN projects p ON p.id = mine.project_id AND p.status <> 'DELETED'
         WHERE mine.user_id = ${viewer.userId}::uuid AND theirs.user_id = ANY(${ids}::uuid[])`);
      const found = new Set(rows.map((r) => r.id));
      return ids.map((id) => found.has(id));
    })
    .load(userId);
}

async function guarded<T>(
  ctx: Context,
  user: RowOf<User>,
  field: keyof typeof USER_FIELD_RULES,
  info: GraphQLResolveInfo,
): Promise<T | null> {
  const value = (user as unknown as Record<string, T>)[field] ?? null;
  // Signing in (signUp, login, refreshSession…) has no viewer yet: the payload's user is the one signing in.
  if (!ctx.viewer) return info.path.prev?.typename === 'AuthPayload' ? value : null;
  const viewer = viewerOf(ctx);
  const rule = USER_FIELD_RULES[field];
  const self = viewer.userId === user.id && !viewer.serviceActor;
  const relation = {
    self,
    sharesProject:
      rule === 'SHARED_PROJECT' && !self && !isHumanAdmin(viewer) && !viewer.serviceActor
        ? await sharesProject(ctx, viewer, user.id)
        : false,
  };
  return userFieldAllowed(viewer, rule, relation) ? value : null;
}

@Resolver(() => User)
@Allow('SIGNED_IN')
export class UserFieldsResolver {
  @FieldResolver(() => String, {
    nullable: true,
    description: "Yours, and of those you share a project with (admins: everyone's); null otherwise.",
  })
  email(@Root() u: RowOf<User>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return guarded<string>(ctx, u, 'email', info);
  }

  @FieldResolver(() => Float, {
    nullable: true,
    description: "Prompt-governance deviation, 0–100. Yours (admins: everyone's); null otherwise.",
  })
  deviationScore(@Root() u: RowOf<User>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return guarded<string>(ctx, u, 'deviationScore', info);
  }

  @FieldResolver(() => String, { nullable: true, description: "Yours (admins: everyone's); null otherwise." })
  blockedReason(@Root() u: RowOf<User>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return guarded<string>(ctx, u, 'blockedReason', info);
  }

  @FieldResolver(() => Date, { nullable: true, description: "Yours (admins: everyone's); null otherwise." })
  blockedAt(@Root() u: RowOf<User>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return guarded<Date>(ctx, u, 'blockedAt', info);
  }

  @FieldResolver(() => Date, { nullable: true, description: "Yours (admins: everyone's); null otherwise." })
  lastLoginAt(@Root() u: RowOf<User>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return guarded<Date>(ctx, u, 'lastLoginAt', info);
  }

  @FieldResolver(() => Date, { nullable: true, description: "Yours (admins: everyone's); null otherwise." })
  lastActivityAt(@Root() u: RowOf<User>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return guarded<Date>(ctx, u, 'lastActivityAt', info);
  }

  @FieldResolver(() => Boolean, { nullable: true, description: "Yours (admins: everyone's); null otherwise." })
  totpEnabled(@Root() u: RowOf<User>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return guarded<boolean>(ctx, u, 'totpEnabled', info);
  }
}
