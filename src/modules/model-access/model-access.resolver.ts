import type { GraphQLResolveInfo } from 'graphql';
import { Arg, Args, Ctx, Field, ID, Info, InputType, Mutation, Query, Resolver } from 'type-graphql';

import type { Context } from '../../server/context.js';
import { Allow } from '../../shared/allow.js';
import { ConnectionType, PageArgs } from '../../shared/connection.js';
import { selectedFields } from '../../shared/selection.js';
import { Role, Tier } from '../identity/user.entity.js';
import { ModelAccessRule } from './model-access-rule.entity.js';

const ModelAccessRuleConnection = ConnectionType(ModelAccessRule);

@InputType()
export class SetModelAccessRuleInput {
  @Field(() => ID, { nullable: true, description: 'The rule to replace; none: a new rule' }) id?: string | null;
  @Field({ description: 'A model name as providers serve it, or a pattern where * stands for any text' })
  model!: string;
  @Field(() => [Tier], { nullable: true, description: 'Tiers admitted; none: any tier' }) tiers?: Tier[] | null;
  @Field(() => [Role], { nullable: true, description: 'Roles admitted; none: any role' }) roles?: Role[] | null;
  @Field(() => ID, { nullable: true, description: 'Only calls attributed to this project' }) projectId?: string | null;
  @Field(() => String, { nullable: true }) note?: string | null;
}

/** Who may use which models (see ModelAccess for the semantics). Administrators only. */
@Resolver()
@Allow('SIGNED_IN')
export class ModelAccessResolver {
  @Allow('ADMIN')
  @Query(() => ModelAccessRuleConnection, {
    description: 'The model access rules, oldest first: a model no rule names is open to all users.',
  })
  modelAccessRules(
    @Args() page: PageArgs,
    @Arg('model', () => String, { nullable: true, description: 'Only the rules written for this model or pattern' })
    model: string | null,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.services.modelAccess.list(selectedFields(info, ['edges', 'node']), page, model);
  }

  @Allow('ADMIN')
  @Mutation(() => ModelAccessRule, {
    description:
      'Creates (or, with id, replaces) a rule: the model becomes usable only by callers matching one of its rules. In force at once on every instance.',
  })
  setModelAccessRule(@Arg('input') input: SetModelAccessRuleInput, @Ctx() ctx: Context) {
    return ctx.services.modelAccess.set(ctx, input);
  }

  @Allow('ADMIN')
  @Mutation(() => Boolean, { description: 'Deletes a rule; false when there was none.' })
  clearModelAccessRule(@Arg('id', () => ID) id: string, @Ctx() ctx: Context) {
    return ctx.services.modelAccess.clear(ctx, id);
  }
}
