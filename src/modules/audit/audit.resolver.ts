import type { GraphQLResolveInfo } from 'graphql';
import { Arg, Args, Ctx, Info, Query, Resolver } from 'type-graphql';
import type { Context } from '../../server/context.js';
import { Viewer } from '../../server/viewer.js';
import { Allow } from '../../shared/allow.js';
import { ConnectionType, PageArgs } from '../../shared/connection.js';
import { selectedFields } from '../../shared/selection.js';
import { AuditEvent } from './audit-event.entity.js';
import { AuditEventWhere, SystemLogWhere } from './audit.inputs.js';
import { AuditChainVerification } from './audit.types.js';
import { SystemLog } from './system-log.entity.js';

const AuditEventConnection = ConnectionType(AuditEvent);
const SystemLogConnection = ConnectionType(SystemLog);

@Resolver()
@Allow('SIGNED_IN')
export class AuditResolver {
  @Allow('OWN_ACCOUNT')
  @Query(() => AuditEventConnection, {
    description: 'Admins see every event; others the events of their own actions. Newest first.',
  })
  auditEvents(
    @Args() page: PageArgs,
    @Arg('where', () => AuditEventWhere, { nullable: true }) where: AuditEventWhere | null,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.services.audit.list(viewer, selectedFields(info, ['edges', 'node']), where ?? {}, page);
  }

  @Allow('ADMIN')
  @Query(() => AuditChainVerification, {
    description: 'Links what is committed, then walks the whole hash chain and names its first broken link. Admins.',
  })
  verifyAuditChain(@Ctx() ctx: Context) {
    return ctx.services.audit.verify();
  }

  @Allow('ADMIN')
  @Query(() => SystemLogConnection, {
    description: 'Warnings and errors of the server (SYSTEM_LOG_LEVEL and above), newest first. Admins.',
  })
  systemLogs(
    @Args() page: PageArgs,
    @Arg('where', () => SystemLogWhere, { nullable: true }) where: SystemLogWhere | null,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    return ctx.services.systemLogs.list(selectedFields(info, ['edges', 'node']), where ?? {}, page);
  }
}
