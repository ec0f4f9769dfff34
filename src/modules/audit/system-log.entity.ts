import { Entity, Enum, Index, Property } from '@mikro-orm/core';
import { GraphQLJSON } from 'graphql-scalars';
import { Field, ID, ObjectType, registerEnumType } from 'type-graphql';
import { BaseEntity } from '../../shared/base.entity.js';

/** The levels (debug, info, warning, error, critical); pino's warn is WARNING, fatal is CRITICAL. */
export enum SystemLogLevel {
  DEBUG = 'DEBUG',
  INFO = 'INFO',
  WARNING = 'WARNING',
  ERROR = 'ERROR',
  CRITICAL = 'CRITICAL',
}
registerEnumType(SystemLogLevel, { name: 'SystemLogLevel' });

export const SYSTEM_LOG_LEVELS = [
  SystemLogLevel.DEBUG,
  SystemLogLevel.INFO,
  SystemLogLevel.WARNING,
  SystemLogLevel.ERROR,
  SystemLogLevel.CRITICAL,
] as const;

/**
 * A warning or error of the server itself (system_logs), copied from its log
 * output (./system-log.service.ts) so that admins can read it through the API. Secrets
 * were already redacted by the logger. No foreign keys: logs outlive what they mention.
 */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'system_logs' })
@Index({ properties: ['createdAt'] })
@Index({ properties: ['level', 'createdAt'] })
@Index({ properties: ['module', 'createdAt'] })
export class SystemLog extends BaseEntity {
  @Field(() => SystemLogLevel)
  @Enum({ items: () => SystemLogLevel, nativeEnumName: 'system_log_level' })
  level!: SystemLogLevel;

  @Field(() => String, {
    nullable: true,
    description: 'The part of the server that logged it (jobs, events, audit, infrastructure, …)',
  })
  @Property({ type: 'text', nullable: true })
  module?: string | null;

  @Field()
  @Property({ type: 'text' })
  message!: string;

  @Field(() => GraphQLJSON, { nullable: true, description: 'The rest of the log line: error, job, topic, ids…' })
  @Property({ type: 'jsonb', nullable: true })
  context?: unknown;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  requestId?: string | null;

  @Field(() => ID, { nullable: true })
  @Property({ type: 'uuid', nullable: true })
  userId?: string | null;
}
