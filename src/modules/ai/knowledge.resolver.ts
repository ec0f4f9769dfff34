import type { GraphQLResolveInfo } from 'graphql';
import { Arg, Args, Ctx, ID, Info, Int, Mutation, Query, Resolver } from 'type-graphql';
import type { Context } from '../../server/context.js';
import { Viewer } from '../../server/viewer.js';
import { Allow } from '../../shared/allow.js';
import { ConnectionType, PageArgs } from '../../shared/connection.js';
import { BadInputError, isUuid } from '../../shared/errors.js';
import { readModel } from '../../shared/read-model.js';
import { selectedFields } from '../../shared/selection.js';
import { KnowledgeEntry } from './knowledge-entry.entity.js';
import {
  CreateKnowledgeEntryInput,
  KnowledgeEntryWhere,
  KnowledgeSearchHit,
  UpdateKnowledgeEntryInput,
} from './knowledge.inputs.js';
import { MAX_SEARCH_RESULTS } from './knowledge.service.js';

const KnowledgeEntryConnection = ConnectionType(KnowledgeEntry);

/** The knowledge base: admins write it, everyone signed in reads and searches it. */
@Resolver(() => KnowledgeEntry)
@Allow('SIGNED_IN')
export class KnowledgeResolver {
  @Query(() => KnowledgeEntry, { nullable: true, description: 'An entry (deactivated ones: admins only).' })
  knowledgeEntry(
    @Arg('id', () => ID) id: string,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    if (!isUuid(id)) return null;
    return ctx.loaders
      .byId(readModel(KnowledgeEntry), selectedFields(info), ctx.services.knowledge.visible(viewer))
      .load(id.toLowerCase());
  }

  @Query(() => KnowledgeEntryConnection, {
    description: 'Entries, newest first; active ones only unless you are an admin.',
  })
  knowledgeEntries(
    @Args() page: PageArgs,
    @Arg('where', () => KnowledgeEntryWhere, { nullable: true }) where: KnowledgeEntryWhere | null,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.services.knowledge.list(viewer, selectedFields(info, ['edges', 'node']), where ?? {}, page);
  }

  @Query(() => [KnowledgeSearchHit], {
    description: `Full-text search of the active entries (English stemming; web search syntax: "quoted phrase", -not, or), best first. first: 1–${MAX_SEARCH_RESULTS}, 10 by default.`,
  })
  searchKnowledge(
    @Arg('query') query: string,
    @Arg('category', () => String, { nullable: true }) category: string | null,
    @Arg('first', () => Int, { defaultValue: 10 }) first: number,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    if (first < 1 || first > MAX_SEARCH_RESULTS)
      throw BadInputError.field('first', `must be between 1 and ${MAX_SEARCH_RESULTS}`);
    if (query.length > 500) throw BadInputError.field('query', 'must be at most 500 characters');
    return ctx.services.knowledge.search(selectedFields(info, ['entry']), query, category, first);
  }

  @Allow('ADMIN')
  @Mutation(() => KnowledgeEntry, { description: 'Admins. externalVectorId is unique (CONFLICT).' })
  createKnowledgeEntry(@Arg('input') input: CreateKnowledgeEntryInput, @Ctx() ctx: Context) {
    return ctx.services.knowledge.create(ctx, input);
  }

  @Allow('ADMIN')
  @Mutation(() => KnowledgeEntry, {
    description: 'Admins. Omitted fields stay; externalVectorId is unique (CONFLICT).',
  })
  updateKnowledgeEntry(@Arg('input') input: UpdateKnowledgeEntryInput, @Ctx() ctx: Context) {
    return ctx.services.knowledge.update(ctx, input);
  }

  @Allow('ADMIN')
  @Mutation(() => KnowledgeEntry, {
    description:
      "Admins. Out of searches and the assistant's context; updateKnowledgeEntry(active: true) brings it back.",
  })
  deactivateKnowledgeEntry(@Arg('id', () => ID) id: string, @Ctx() ctx: Context) {
    return ctx.services.knowledge.deactivate(ctx, id);
  }
}
