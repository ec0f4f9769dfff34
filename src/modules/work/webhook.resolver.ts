import type { GraphQLResolveInfo } from 'graphql';
import { Arg, Args, Ctx, Field, ID, Info, Mutation, ObjectType, Query, Resolver } from 'type-graphql';
import type { Context } from '../../server/context.js';
import { Viewer } from '../../server/viewer.js';
import { Allow } from '../../shared/allow.js';
import { ConnectionType, PageArgs } from '../../shared/connection.js';
import { selectedFields } from '../../shared/selection.js';
import { Webhook } from './webhook.entity.js';
import { CreateWebhookInput } from './webhook.inputs.js';

@ObjectType({ simpleResolvers: true })
export class CreatedWebhook {
  @Field(() => Webhook) webhook!: Webhook;
  @Field({
    description: 'The signing secret (whsec_…), shown this once: keep it where the receiver verifies signatures.',
  })
  secret!: string;
}

const WebhookConnection = ConnectionType(Webhook);

/** The organisation's outgoing webhooks: admins only. */
@Resolver(() => Webhook)
@Allow('ADMIN')
export class WebhookResolver {
  @Query(() => WebhookConnection, { description: 'Admins. Oldest first.' })
  webhooks(@Args() page: PageArgs, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.services.webhooks.list(selectedFields(info, ['edges', 'node']), page);
  }

  @Mutation(() => CreatedWebhook, {
    description: 'Admins. Deliveries are signed per Standard Webhooks with the secret returned here, once.',
  })
  createWebhook(@Arg('input') input: CreateWebhookInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.webhooks.create(ctx, viewer, input);
  }

  @Mutation(() => Boolean, { description: 'Admins. Its pending deliveries are dropped with it.' })
  deleteWebhook(@Arg('id', () => ID) id: string, @Ctx() ctx: Context) {
    return ctx.services.webhooks.remove(ctx, id);
  }
}
