import { ArrayMaxSize, IsOptional, Length, Max, Min } from 'class-validator';
import { Arg, Args, Ctx, Field, ID, InputType, Int, Mutation, Query, Resolver } from 'type-graphql';

import type { Context } from '../../server/context.js';
import { Viewer } from '../../server/viewer.js';
import { Allow } from '../../shared/allow.js';
import { ConnectionType, PageArgs } from '../../shared/connection.js';
import { DecimalScalar } from '../../shared/decimal.scalar.js';
import { VirtualKey } from './virtual-key.js';

const VirtualKeyConnection = ConnectionType(VirtualKey);

@InputType({ description: 'Which virtual keys: yours by default; an administrator may name a user or ask for all' })
export class VirtualKeyWhereInput {
  @Field(() => ID, { nullable: true, description: "Another user's keys (administrators only)" }) userId?: string | null;
  @Field(() => Boolean, { nullable: true, description: "Every user's keys (administrators only)" }) allUsers?:
    boolean | null;
  @Field(() => Boolean, { nullable: true, description: 'Revoked keys too (default: live ones only)' })
  includeRevoked?: boolean | null;
}

@InputType({ description: 'A field left out stays as it is; null clears it' })
export class UpdateVirtualKeyInput {
  @Field(() => ID) id!: string;
  @Field(() => String, { nullable: true }) @IsOptional() @Length(1, 100) name?: string;
  @Field(() => [String], { nullable: true, description: 'null or []: every model you may use' })
  @IsOptional()
  @ArrayMaxSize(100)
  @Length(1, 256, { each: true })
  allowedModels?: string[] | null;
  @Field(() => ID, { nullable: true, description: 'The task that governs every call (its project comes with it)' })
  taskId?: string | null;
  @Field(() => ID, { nullable: true }) projectId?: string | null;
  @Field(() => DecimalScalar, { nullable: true }) dailyCostLimitUsd?: string | null;
  @Field(() => DecimalScalar, { nullable: true }) monthlyCostLimitUsd?: string | null;
  @Field(() => Int, { nullable: true }) @IsOptional() @Min(1) @Max(1_000_000_000) dailyTokenLimit?: number | null;
  @Field(() => Int, { nullable: true }) @IsOptional() @Min(1) @Max(1_000_000) requestsPerMinute?: number | null;
  @Field(() => Date, { nullable: true, description: 'null: never expires' }) expiresAt?: Date | null;
}

/** Virtual keys after creation: list, change, revoke (owner or administrator). Rules live in VirtualKeyService. */
@Resolver()
@Allow('SIGNED_IN')
export class VirtualKeyManageResolver {
  @Allow('OWN_ACCOUNT')
  @Query(() => VirtualKeyConnection, {
    description: 'Virtual keys with their rules, newest first (never the token: it is shown once, at creation).',
  })
  virtualKeys(
    @Args() page: PageArgs,
    @Arg('where', () => VirtualKeyWhereInput, { nullable: true }) where: VirtualKeyWhereInput | null,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
  ) {
    return ctx.services.virtualKeys.list(viewer, where ?? {}, page);
  }

  @Allow('OWN_ACCOUNT')
  @Query(() => VirtualKey)
  virtualKey(@Arg('id', () => ID) id: string, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.virtualKeys.get(ctx, viewer, id);
  }

  @Allow('OWN_ACCOUNT')
  @Mutation(() => VirtualKey, {
    description: "Changes a key's rules; the very next call through the gateway obeys them, on every instance.",
  })
  updateVirtualKey(@Arg('input') input: UpdateVirtualKeyInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    const { id, ...changes } = input;
    return ctx.services.virtualKeys.update(ctx, viewer, id, changes);
  }

  @Allow('OWN_ACCOUNT')
  @Mutation(() => VirtualKey, { description: 'Revokes the key (as revokeApiToken): it stops at once everywhere.' })
  revokeVirtualKey(@Arg('id', () => ID) id: string, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.virtualKeys.revoke(ctx, viewer, id);
  }
}
