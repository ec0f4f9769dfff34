import { Arg, Args, Ctx, ID, Info, Int, Mutation, Query, Resolver } from 'type-graphql';
import type { GraphQLResolveInfo } from 'graphql';
import sql from 'sql-template-tag';
import type { Context } from '../../server/context.js';
import { Viewer } from '../../server/viewer.js';
import { Allow } from '../../shared/allow.js';
import { ConnectionType, NEWEST_FIRST, PageArgs, paginate } from '../../shared/connection.js';
import { requireUuid } from '../../shared/errors.js';
import { readModel } from '../../shared/read-model.js';
import { selectedFields } from '../../shared/selection.js';
import {
  AuthPayload,
  ChangePasswordInput,
  LoginInput,
  RefreshSessionInput,
  RequestPasswordResetInput,
  ResetPasswordInput,
  SignUpInput,
  TotpCodeInput,
  TotpEnrollment,
} from './identity.inputs.js';
import { Session } from './session.entity.js';

const SessionConnection = ConnectionType(Session);

@Resolver()
@Allow('SIGNED_IN')
export class AuthResolver {
  @Allow('PUBLIC')
  @Mutation(() => AuthPayload, {
    description: 'The first user ever becomes ADMIN; later ones need an invitation code unless open sign-up is on.',
  })
  signUp(@Arg('input') input: SignUpInput, @Ctx() ctx: Context) {
    return ctx.services.auth.signUp(ctx, input);
  }

  @Allow('PUBLIC')
  @Mutation(() => AuthPayload, {
    description:
      'login is an e-mail or a username. 5 failures from one address refuse that address for the account for 15 minutes; 20 in a row from anywhere lock the account (the owner still signs in with password and TOTP from a device used before).',
  })
  login(@Arg('input') input: LoginInput, @Ctx() ctx: Context) {
    return ctx.services.auth.login(ctx, input.login, input.password, input.totpCode);
  }

  @Allow('PUBLIC')
  @Mutation(() => AuthPayload, {
    description: 'Rotates the refresh token. Reusing an old one ends its whole session family.',
  })
  refreshSession(@Arg('input') input: RefreshSessionInput, @Ctx() ctx: Context) {
    return ctx.services.auth.refresh(ctx, input.refreshToken);
  }

  @Allow('OWN_ACCOUNT')
  @Mutation(() => Boolean, { description: 'Ends the calling session.' })
  logout(@Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.auth.logout(ctx, viewer);
  }

  @Allow('OWN_ACCOUNT')
  @Mutation(() => Int, {
    description: 'Ends every session of the caller; returns how many. revokeApiTokens: revoke your API tokens too.',
  })
  async logoutAll(
    @Arg('revokeApiTokens', () => Boolean, { nullable: true }) revokeApiTokens: boolean | null,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
  ) {
    return ctx.services.auth.logoutAll(ctx, viewer, !!revokeApiTokens);
  }

  @Allow('OWN_ACCOUNT')
  @Query(() => SessionConnection, { description: "The caller's open sessions." })
  sessions(@Args() page: PageArgs, @Viewer() viewer: Viewer, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return paginate(
      ctx.runtime.db,
      {
        model: readModel(Session),
        fields: selectedFields(info, ['edges', 'node']),
        where: sql`t.user_id = ${viewer.userId}::uuid AND t.revoked_at IS NULL AND t.rotated_at IS NULL AND t.expires_at > now()`,
        sort: NEWEST_FIRST,
      },
      page,
    );
  }

  @Allow('OWN_ACCOUNT')
  @Mutation(() => Boolean, { description: "Ends one of your sessions (admins: anyone's)." })
  revokeSession(@Arg('id', () => ID) id: string, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.auth.revokeSession(ctx, viewer, requireUuid(id));
  }

  @Allow('OWN_ACCOUNT')
  @Mutation(() => Boolean, { description: 'Ends your other sessions.' })
  changePassword(@Arg('input') input: ChangePasswordInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.auth.changePassword(ctx, viewer, input.currentPassword, input.newPassword);
  }

  @Allow('PUBLIC')
  @Mutation(() => Boolean, { description: 'Answers true whether or not the account exists.' })
  requestPasswordReset(@Arg('input') input: RequestPasswordResetInput, @Ctx() ctx: Context) {
    return ctx.services.auth.requestPasswordReset(ctx, input.email);
  }

  @Allow('PUBLIC')
  @Mutation(() => Boolean)
  resetPassword(@Arg('input') input: ResetPasswordInput, @Ctx() ctx: Context) {
    return ctx.services.auth.resetPassword(ctx, input.token, input.newPassword, !!input.revokeApiTokens);
  }

  @Allow('OWN_ACCOUNT')
  @Mutation(() => TotpEnrollment, { description: 'Starts TOTP enrolment; confirm with a code to enable it.' })
  async enrollTotp(@Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    const r = await ctx.services.auth.enrollTotp(ctx, viewer);
    return { secret: r.secret, otpauthUri: r.uri };
  }

  @Allow('OWN_ACCOUNT')
  @Mutation(() => Boolean)
  confirmTotp(@Arg('input') input: TotpCodeInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.auth.confirmTotp(ctx, viewer, input.code);
  }

  @Allow('OWN_ACCOUNT')
  @Mutation(() => Boolean)
  disableTotp(@Arg('input') input: TotpCodeInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.auth.disableTotp(ctx, viewer, input.code);
  }
}
