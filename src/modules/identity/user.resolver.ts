import type { GraphQLResolveInfo } from 'graphql';
import { Arg, Args, Ctx, ID, Info, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import { USER_UPDATED, type UserUpdated } from './identity.events.js';
import type { Context } from '../../server/context.js';
import { Viewer } from '../../server/viewer.js';
import { Allow } from '../../shared/allow.js';
import { ConnectionType, PageArgs } from '../../shared/connection.js';
import { isUuid, requireUuid } from '../../shared/errors.js';
import { readModel } from '../../shared/read-model.js';
import { selectedFields } from '../../shared/selection.js';
import { BlockUserInput, UpdateMeInput, UpdateUserInput, UserWhere } from './identity.inputs.js';
import { User } from './user.entity.js';
import { isHumanAdmin } from '../../shared/viewer.js';
import { onTopic } from '../../server/subscribe.js';

const UserConnection = ConnectionType(User);

@Resolver(() => User)
@Allow('SIGNED_IN')
export class UserResolver {
  @Allow('OWN_ACCOUNT')
  @Query(() => User, { description: 'The signed-in user (for a service token: the admin who created it).' })
  async me(@Viewer() viewer: Viewer, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders.byId(readModel(User), selectedFields(info)).load(viewer.userId);
  }

  @Query(() => User, { nullable: true, description: 'Any user of the organisation, by id (null when there is none).' })
  user(@Arg('id', () => ID) id: string, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    if (!isUuid(id)) return null;
    return ctx.loaders.byId(readModel(User), selectedFields(info)).load(id.toLowerCase());
  }

  @Allow('ADMIN')
  @Query(() => UserConnection)
  users(
    @Args() page: PageArgs,
    @Arg('where', () => UserWhere, { nullable: true }) where: UserWhere | null,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.services.users.list(selectedFields(info, ['edges', 'node']), where ?? {}, page);
  }

  @Allow('OWN_ACCOUNT')
  @Mutation(() => User, { description: 'Your name, username and preferences (role, tier and quota are for admins).' })
  updateMe(@Arg('input') input: UpdateMeInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.users.updateMe(ctx, viewer, input);
  }

  @Allow('ADMIN')
  @Mutation(() => User, { description: "Role, status, tier. A status other than ACTIVE ends the user's sessions." })
  updateUser(@Arg('input') input: UpdateUserInput, @Ctx() ctx: Context) {
    return ctx.services.users.update(ctx, input.id, input);
  }

  @Allow('ADMIN')
  @Mutation(() => User, { description: 'Blocks sign-in and every credential; ends sessions and closes sockets.' })
  blockUser(@Arg('input') input: BlockUserInput, @Ctx() ctx: Context) {
    return ctx.services.users.block(ctx, input.id, input.reason);
  }

  @Allow('ADMIN')
  @Mutation(() => User)
  unblockUser(@Arg('id', () => ID) id: string, @Ctx() ctx: Context) {
    return ctx.services.users.unblock(ctx, requireUuid(id));
  }

  @Allow('OWN_ACCOUNT')
  @Subscription(() => User, {
    description:
      'A user changed (role, status, tier, block, profile): to admins, and to the user concerned. `id` narrows to one user.',
    subscribe: onTopic<UserUpdated>(
      USER_UPDATED,
      ({ args }) =>
        (p, viewer) =>
          (!args.id || p.id === args.id) && (isHumanAdmin(viewer) || p.id === viewer.userId),
    ),
  })
  userUpdated(
    @Root() event: UserUpdated,
    @Arg('id', () => ID, { nullable: true }) _id: string | null,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.loaders.byId(readModel(User), selectedFields(info)).load(event.id);
  }
}
