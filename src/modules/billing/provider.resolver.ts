import type { GraphQLResolveInfo } from 'graphql';
import {
  Arg,
  Args,
  Ctx,
  Float,
  FieldResolver,
  ID,
  Info,
  Mutation,
  Query,
  Resolver,
  Root,
  Subscription,
} from 'type-graphql';
import { viewerOf, type Context } from '../../server/context.js';
import { Viewer } from '../../server/viewer.js';
import { Allow } from '../../shared/allow.js';
import { ConnectionType, PageArgs } from '../../shared/connection.js';
import { isUuid } from '../../shared/errors.js';
import { readModel, type RowOf } from '../../shared/read-model.js';
import { selectedFields } from '../../shared/selection.js';
import { ProviderHealth } from './provider-health.entity.js';
import { Provider } from './provider.entity.js';
import { PROVIDER_HEALTH_CHANGED, type ProviderHealthChanged } from './provider.events.js';
import { CreateProviderInput, ProviderWhere, SetMyProviderKeyInput, UpdateProviderInput } from './provider.inputs.js';
import type { HealthRow } from './provider.service.js';
import { UserProviderKey } from './user-provider-key.entity.js';
import { isHumanAdmin } from '../../shared/viewer.js';
import { onTopic } from '../../server/subscribe.js';

const ProviderConnection = ConnectionType(Provider);
const providers = () => readModel(Provider);
const healthLoader = (ctx: Context) =>
  ctx.loaders.custom<string, HealthRow | null>('provider.health', (ids) => ctx.services.providers.healthOf(ids));

/** Fields a provider's resolvers read besides the selected ones. */
function providerFields(info: GraphQLResolveInfo, path: string[] = []): ReadonlySet<string> {
  const fields = selectedFields(info, path);
  return fields.has('hasPlatformKey') ? new Set([...fields, 'platformKeyLast4']) : fields;
}

@Resolver(() => Provider)
@Allow('SIGNED_IN')
export class ProviderResolver {
  @Query(() => ProviderConnection, {
    description:
      'Providers by name. Admins see all (and may filter by active); others see the active ones, without secrets.',
  })
  providers(
    @Args() page: PageArgs,
    @Arg('where', () => ProviderWhere, { nullable: true }) where: ProviderWhere | null,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    const w = where ?? {};
    return ctx.services.providers.list(
      viewer,
      providerFields(info, ['edges', 'node']),
      isHumanAdmin(ctx.viewer) ? w : { ...w, active: null },
      page,
    );
  }

  @Query(() => Provider, {
    nullable: true,
    description: 'A provider you may see (admins: any; others: active ones), or null.',
  })
  provider(
    @Arg('id', () => ID) id: string,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    if (!isUuid(id)) return null;
    return ctx.loaders
      .byId(providers(), providerFields(info), ctx.services.providers.visible(viewer))
      .load(id.toLowerCase());
  }

  @Allow('ADMIN')
  @Mutation(() => Provider, {
    description: 'Admins. The platform key is encrypted at rest; only its last four characters are ever shown.',
  })
  createProvider(@Arg('input') input: CreateProviderInput, @Ctx() ctx: Context) {
    return ctx.services.providers.create(ctx, input);
  }

  @Allow('ADMIN')
  @Mutation(() => Provider, {
    description: 'Admins: change settings, (de)activate, replace or remove the platform key.',
  })
  updateProvider(@Arg('input') input: UpdateProviderInput, @Ctx() ctx: Context) {
    return ctx.services.providers.update(ctx, input);
  }

  @FieldResolver(() => String, { nullable: true, description: 'Admins only (null for others).' })
  apiEndpoint(@Root() p: RowOf<Provider>, @Ctx() ctx: Context) {
    return isHumanAdmin(ctx.viewer) ? (p.apiEndpoint ?? null) : null;
  }

  @FieldResolver(() => String, {
    nullable: true,
    description: 'The last four characters of the platform key. Admins only (null for others).',
  })
  platformKeyLast4(@Root() p: RowOf<Provider>, @Ctx() ctx: Context) {
    return isHumanAdmin(ctx.viewer) ? (p.platformKeyLast4 ?? null) : null;
  }

  @FieldResolver(() => Boolean, { description: 'Whether a platform key is set. Admins only (false for others).' })
  hasPlatformKey(@Root() p: RowOf<Provider>, @Ctx() ctx: Context) {
    return isHumanAdmin(ctx.viewer) && p.platformKeyLast4 != null;
  }

  @FieldResolver(() => ProviderHealth, {
    nullable: true,
    description: 'What the health job saw last (null before its first check).',
  })
  health(@Root() p: RowOf<Provider>, @Ctx() ctx: Context) {
    return healthLoader(ctx).load(p.id);
  }
}

@Resolver(() => ProviderHealth)
@Allow('SIGNED_IN')
export class ProviderHealthResolver {
  @FieldResolver(() => ID)
  providerId(@Root() h: HealthRow) {
    return h.providerId;
  }

  @FieldResolver(() => Provider, { nullable: true, description: 'Null when you may not see the provider.' })
  provider(@Root() h: HealthRow, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders
      .byId(providers(), providerFields(info), ctx.services.providers.visible(viewerOf(ctx)))
      .load(h.providerId);
  }

  @FieldResolver(() => Float, {
    nullable: true,
    description: 'successes / checks, from 0 to 1 (null before the first check).',
  })
  successRate(@Root() h: HealthRow) {
    return h.checks > 0 ? h.successes / h.checks : null;
  }

  @FieldResolver(() => String, {
    nullable: true,
    description: 'Why the last check failed (admins only; null after a success).',
  })
  lastError(@Root() h: HealthRow, @Ctx() ctx: Context) {
    return isHumanAdmin(ctx.viewer) ? h.lastError : null;
  }

  @Allow('ADMIN')
  @Subscription(() => ProviderHealth, {
    description: 'A provider turned unhealthy (PROVIDER_UNHEALTHY_AFTER failed checks) or healthy again. Admins.',
    subscribe: onTopic<ProviderHealthChanged>(PROVIDER_HEALTH_CHANGED, () => (_e, viewer) => isHumanAdmin(viewer)),
  })
  async providerHealthChanged(@Root() e: ProviderHealthChanged, @Ctx() ctx: Context) {
    return healthLoader(ctx).load(e.providerId);
  }
}

@Resolver(() => UserProviderKey)
@Allow('SIGNED_IN')
export class UserProviderKeyResolver {
  @Query(() => [UserProviderKey], {
    description:
      'Your own provider keys (at most one per provider), oldest first: never the key, its last four characters.',
  })
  myProviderKeys(@Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.providers.myKeys(viewer);
  }

  @Mutation(() => UserProviderKey, {
    description: "Stores (or replaces) your own key for a provider; it is used before the platform's.",
  })
  setMyProviderKey(@Arg('input') input: SetMyProviderKeyInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.providers.setMyKey(ctx, viewer, input);
  }

  @Mutation(() => Boolean, { description: 'Deletes your own key for a provider; false when you had none.' })
  deleteMyProviderKey(@Arg('providerId', () => ID) providerId: string, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.providers.deleteMyKey(ctx, viewer, providerId);
  }

  @FieldResolver(() => Provider, {
    nullable: true,
    description: 'Null when the provider is no longer visible to you (deactivated).',
  })
  provider(@Root() k: RowOf<UserProviderKey>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders.relation(
      k.provider as unknown as string | { id: string },
      providers(),
      providerFields(info),
      ctx.services.providers.visible(viewerOf(ctx)),
    );
  }
}
