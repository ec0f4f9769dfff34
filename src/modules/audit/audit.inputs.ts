import { IsIn, IsUUID, MaxLength } from 'class-validator';
import { Field, ID, InputType } from 'type-graphql';
import { SystemLogLevel } from './system-log.entity.js';

@InputType({ description: 'All given conditions must hold.' })
export class AuditEventWhere {
  @Field(() => ID, { nullable: true, description: 'The acting user (non-admins only ever see their own)' })
  @IsUUID()
  actorId?: string | null;
  @Field(() => String, {
    nullable: true,
    description: 'e.g. user:<id>, runtime:docker, job:approvals.expire, anonymous',
  })
  @MaxLength(200)
  actorLabel?: string | null;
  @Field(() => String, { nullable: true, description: 'e.g. Task, Container, User' }) @MaxLength(100) entityType?:
    string | null;
  @Field(() => String, { nullable: true }) @MaxLength(200) entityId?: string | null;
  @Field(() => String, { nullable: true, description: 'Exactly this action, e.g. container.create' })
  @MaxLength(200)
  action?: string | null;
  @Field(() => String, { nullable: true, description: 'Actions starting with this, e.g. "container."' })
  @MaxLength(200)
  actionPrefix?: string | null;
  @Field(() => String, { nullable: true }) @IsIn(['SUCCESS', 'FAILURE']) outcome?: string | null;
  @Field(() => String, { nullable: true }) @MaxLength(200) requestId?: string | null;
  @Field(() => Date, { nullable: true, description: 'At or after this time' }) from?: Date | null;
  @Field(() => Date, { nullable: true, description: 'Before this time' }) to?: Date | null;
}

@InputType({ description: 'All given conditions must hold.' })
export class SystemLogWhere {
  @Field(() => [SystemLogLevel], { nullable: true, description: 'Any of these levels' }) levels?:
    SystemLogLevel[] | null;
  @Field(() => SystemLogLevel, { nullable: true, description: 'This level or a more severe one' })
  minLevel?: SystemLogLevel | null;
  @Field(() => String, { nullable: true, description: 'e.g. jobs, events, audit, infrastructure' })
  @MaxLength(100)
  module?: string | null;
  @Field(() => String, { nullable: true, description: 'Matches the message' }) @MaxLength(200) search?: string | null;
  @Field(() => String, { nullable: true }) @MaxLength(200) requestId?: string | null;
  @Field(() => Date, { nullable: true, description: 'At or after this time' }) from?: Date | null;
  @Field(() => Date, { nullable: true, description: 'Before this time' }) to?: Date | null;
}
