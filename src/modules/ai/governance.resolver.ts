import { Arg, Ctx, Field, InputType, Mutation, Query, Resolver } from 'type-graphql';
import type { Context } from '../../server/context.js';
import { Allow } from '../../shared/allow.js';
import { GovernanceSettings, INTENTS } from './governance.js';

@InputType()
export class GovernanceSettingsInput {
  @Field({ description: 'Every AI call must be bound to a task its caller is assigned to' })
  required!: boolean;
}

@Resolver()
@Allow('SIGNED_IN')
export class GovernanceResolver {
  @Query(() => [String], {
    description: "The intents prompt governance classifies prompts into (what a task's allowedIntents may name).",
  })
  intentVocabulary(): string[] {
    return [...INTENTS];
  }

  @Query(() => GovernanceSettings, { description: "The organisation's prompt-governance settings." })
  governanceSettings(@Ctx() ctx: Context): Promise<GovernanceSettings> {
    return ctx.services.governance.settings();
  }

  @Allow('ADMIN')
  @Mutation(() => GovernanceSettings, {
    description: 'Admins: whether every AI call must be bound to a task (audited; every instance at once).',
  })
  setGovernanceSettings(
    @Arg('input') input: GovernanceSettingsInput,
    @Ctx() ctx: Context,
  ): Promise<GovernanceSettings> {
    return ctx.services.governance.update(ctx, input);
  }
}
