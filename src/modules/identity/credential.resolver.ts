import { Field as GqlField, ObjectType as GqlObjectType } from 'type-graphql';
import { SCOPE_NAMES, TOKEN_SCOPES } from '../../shared/token-scopes.js';
import type { GraphQLResolveInfo } from 'graphql';
import { Arg, Args, Ctx, FieldResolver, ID, Info, Mutation, Query, Resolver, Root } from 'type-graphql';
import type { Context } from '../../server/context.js';
import { Viewer } from '../../server/viewer.js';
import { Allow } from '../../shared/allow.js';
import { ConnectionType, PageArgs } from '../../shared/connection.js';
import type { RowOf } from '../../shared/read-model.js';
import { selectedFields } from '../../shared/selection.js';
import { ApiToken } from './api-token.entity.js';
import {
  CreateApiTokenInput,
  CreateInvitationInput,
  CreateServiceTokenInput,
  CreatedApiToken,
  CreatedInvitation,
} from './identity.inputs.js';
import { Invitation } from './invitation.entity.js';

const ApiTokenConnection = ConnectionType(ApiToken);
const InvitationConnection = ConnectionType(Invitation);

@GqlObjectType('TokenScope')
class TokenScopeInfo {
  @GqlField() name!: string;
  @GqlField(() => [String], { description: 'Every operation of these kinds (Query, Mutation, Subscription)' })
  kinds!: string[];
  @GqlField(() => [String], { description: 'And these operations' }) operations!: string[];
}

@Resolver(() => ApiToken)
@Allow('SIGNED_IN')
export class ApiTokenFieldsResolver {
  @FieldResolver(() => Boolean, {
    description:
      'No scopes: it reaches everything its user may do (a service token: every service operation, in every project). ' +
      'Service tokens need scopes now; one made before keeps working, flagged here and warned about in the system log when used: replace it',
  })
  unscoped(@Root() t: RowOf<ApiToken> & { unscoped?: boolean }): boolean {
    return t.unscoped ?? !t.scopes?.length;
  }
}

@Resolver()
@Allow('SIGNED_IN')
export class CredentialResolver {
  @Allow('OWN_ACCOUNT')
  @Mutation(() => CreatedApiToken, {
    description: 'A personal token for programs, acting as you. The token is shown once.',
  })
  createApiToken(@Arg('input') input: CreateApiTokenInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.credentials.createApiToken(ctx, viewer, input);
  }

  @Allow('ADMIN')
  @Mutation(() => CreatedApiToken, {
    description: 'A token for a system actor (agent, runtime, worker); it may run only service operations.',
  })
  createServiceToken(@Arg('input') input: CreateServiceTokenInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.credentials.createApiToken(ctx, viewer, input);
  }

  @Allow('OWN_ACCOUNT')
  @Query(() => [TokenScopeInfo], { description: 'The scopes an API token may carry, each a named set of operations.' })
  tokenScopes(): TokenScopeInfo[] {
    return SCOPE_NAMES.map((name) => ({
      name,
      kinds: [...TOKEN_SCOPES[name].kinds],
      operations: [...TOKEN_SCOPES[name].operations],
    }));
  }

  @Allow('OWN_ACCOUNT')
  @Query(() => ApiTokenConnection, { description: 'Your API tokens (prefix only; the secret is never shown again).' })
  apiTokens(@Args() page: PageArgs, @Viewer() viewer: Viewer, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.services.credentials.listApiTokens(viewer, selectedFields(info, ['edges', 'node']), page);
  }

  @Allow('OWN_ACCOUNT')
  @Mutation(() => ApiToken)
  revokeApiToken(@Arg('id', () => ID) id: string, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.credentials.revokeApiToken(ctx, viewer, id);
  }

  @Allow('ADMIN')
  @Mutation(() => CreatedInvitation, { description: 'The code is shown once.' })
  createInvitation(@Arg('input') input: CreateInvitationInput, @Ctx() ctx: Context) {
    return ctx.services.credentials.createInvitation(ctx, input);
  }

  @Allow('ADMIN')
  @Query(() => InvitationConnection)
  invitations(
    @Args() page: PageArgs,
    @Arg('activeOnly', () => Boolean, { defaultValue: false }) activeOnly: boolean,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.services.credentials.listInvitations(selectedFields(info, ['edges', 'node']), page, activeOnly);
  }

  @Allow('ADMIN')
  @Mutation(() => Invitation)
  revokeInvitation(@Arg('id', () => ID) id: string, @Ctx() ctx: Context) {
    return ctx.services.credentials.revokeInvitation(ctx, id);
  }
}
