import type { GraphQLResolveInfo } from 'graphql';
import { Args, Ctx, Info, Query, Resolver } from 'type-graphql';
import sql from 'sql-template-tag';
import { viewerOf, type Context } from '../../server/context.js';
import { Allow } from '../../shared/allow.js';
import { ConnectionType, PageArgs, paginate } from '../../shared/connection.js';
import { readModel } from '../../shared/read-model.js';
import { selectedFields } from '../../shared/selection.js';
import { Role } from '../identity/user.entity.js';
import { AuditEvent } from './audit-event.entity.js';

const AuditEventConnection = ConnectionType(AuditEvent);

@Resolver()
@Allow('SIGNED_IN')
export class AuditResolver {
  @Allow('OWN_ACCOUNT')
  @Query(() => AuditEventConnection, { description: 'Admins see every event; others the events of their own actions. Newest first.' })
  auditEvents(@Args() page: PageArgs, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    const viewer = viewerOf(ctx);
    return paginate(
      ctx.runtime.db,
      {
        model: readModel(AuditEvent),
        fields: selectedFields(info, ['edges', 'node']),
        where: viewer.role === Role.ADMIN ? sql`TRUE` : sql`t.actor_id = ${viewer.userId}::uuid`,
        sort: { property: 'id', direction: 'DESC', type: 'uuid' },
      },
      page,
    );
  }
}
