import { IsUUID, Length, MaxLength } from 'class-validator';
import type { GraphQLResolveInfo } from 'graphql';
import {
  Arg,
  Ctx,
  Field,
  FieldResolver,
  ID,
  Info,
  InputType,
  Int,
  Mutation,
  Query,
  Resolver,
  Root,
} from 'type-graphql';
import type { Context } from '../../server/context.js';
import { Viewer } from '../../server/viewer.js';
import { Allow } from '../../shared/allow.js';
import { readModel, type RowOf } from '../../shared/read-model.js';
import { selectedFields } from '../../shared/selection.js';
import { Agent } from './agent.entity.js';

/** Here rather than in an agent.inputs.ts: the agents' one input. */
@InputType()
export class UpdateAgentInput {
  @Field(() => ID) @IsUUID() id!: string;
  @Field(() => String, { nullable: true }) @Length(1, 100) name?: string | null;
  @Field(() => String, { nullable: true, description: 'null clears it' }) @MaxLength(2000) description?: string | null;
  @Field(() => String, { nullable: true }) @Length(1, 20_000) systemPrompt?: string | null;
  @Field(() => String, {
    nullable: true,
    description: 'The model asked of the provider, e.g. steward-local-1 or gpt-4o-mini',
  })
  @Length(1, 200)
  defaultModel?: string | null;
  @Field(() => Boolean, {
    nullable: true,
    description: 'An inactive agent is hidden from non-admins and takes no new conversations or messages',
  })
  active?: boolean | null;
}

@Resolver(() => Agent)
@Allow('SIGNED_IN')
export class AgentResolver {
  @Query(() => [Agent], {
    description:
      'The seven agents (the six development agents and the assistant), in canonical order. Seven reference rows: a plain list, like projectTemplates. includeInactive: admins only.',
  })
  agents(
    @Arg('includeInactive', () => Boolean, { defaultValue: false }) includeInactive: boolean,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.services.agents.list(viewer, selectedFields(info), includeInactive);
  }

  @FieldResolver(() => Int, {
    description: 'Open tasks (PENDING, ASSIGNED, IN_PROGRESS) the agent is assigned to, counted now.',
  })
  async currentLoad(@Root() a: RowOf<Agent>, @Ctx() ctx: Context): Promise<number> {
    if ('currentLoad' in a) return (a as unknown as { currentLoad: number }).currentLoad;
    const row = await ctx.loaders
      .byId<{ id: string; currentLoad: number }>(readModel(Agent), ['currentLoad'])
      .load(a.id);
    return row?.currentLoad ?? 0;
  }

  @Allow('ADMIN')
  @Mutation(() => Agent, {
    description: 'Admins: rename an agent, change its system prompt or default model, (de)activate it.',
  })
  updateAgent(@Arg('input') input: UpdateAgentInput, @Ctx() ctx: Context) {
    return ctx.services.agents.update(ctx, input);
  }
}
