import { Entity, Enum, Index, ManyToOne, Property, Unique, type Opt, type Ref } from '@mikro-orm/core';
import { GraphQLJSONObject } from 'graphql-scalars';
import { Field, ObjectType, registerEnumType } from 'type-graphql';
import { BaseEntity, TimestampedEntity } from '../../shared/base.entity.js';
import { DecimalScalar } from '../../shared/decimal.scalar.js';
import { User } from '../identity/user.entity.js';
import { Project } from '../projects/project.entity.js';

/** The three versions: V1 experimentation, V2 production, V3 quarantine. */
export enum VersionTag {
  V1 = 'V1',
  V2 = 'V2',
  V3 = 'V3',
}
registerEnumType(VersionTag, { name: 'VersionTag', description: 'V1 experimentation, V2 production, V3 quarantine' });

export enum VersionAction {
  PROMOTED = 'PROMOTED',
  DEGRADED = 'DEGRADED',
  UPDATED = 'UPDATED',
}
registerEnumType(VersionAction, { name: 'VersionAction' });

export enum BaselineOperator {
  GT = 'GT',
  LT = 'LT',
  GTE = 'GTE',
  LTE = 'LTE',
  EQ = 'EQ',
}
registerEnumType(BaselineOperator, {
  name: 'BaselineOperator',
  description: 'GT >, LT <, GTE >=, LTE <=, EQ =',
  valuesConfig: {
    GT: { description: '>' },
    LT: { description: '<' },
    GTE: { description: '>=' },
    LTE: { description: '<=' },
    EQ: { description: '=' },
  },
});

/**
 * One of a project's three versions (unique per project and tag). Created together the
 * first time anything asks for a project's versions (lazily, so projects created before
 * this module, and by any path, have them too). `metrics` are those of the evaluation
 * that brought the version its config (the comparison baseline for the next promotion).
 */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'versions' })
@Unique({ properties: ['project', 'tag'] })
export class Version extends TimestampedEntity {
  @ManyToOne(() => Project, { ref: true, deleteRule: 'cascade' })
  project!: Ref<Project>;

  @Field(() => VersionTag)
  @Enum({ items: () => VersionTag, nativeEnumName: 'version_tag' })
  tag!: VersionTag;

  @Field(() => GraphQLJSONObject)
  @Property({ type: 'jsonb', default: '{}' })
  modelConfig: Opt<Record<string, unknown>> = {};

  @Field(() => String, { nullable: true, description: 'sha256 of the canonical model config (null while empty)' })
  @Property({ type: 'text', nullable: true })
  configHash?: string | null;

  @Field(() => GraphQLJSONObject, { nullable: true })
  @Property({ type: 'jsonb', nullable: true })
  metrics?: Record<string, unknown> | null;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  changelog?: string | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  promotedAt?: Date | null;

  @ManyToOne(() => User, { ref: true, nullable: true, deleteRule: 'set null' })
  promotedBy?: Ref<User> | null;
}

/** Every change of a version: PROMOTED (V1→V2), DEGRADED (V2→V3), UPDATED (same tag); who and why. Append-only. */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'version_history' })
@Index({ properties: ['project', 'id'] })
export class VersionHistory extends BaseEntity {
  @ManyToOne(() => Project, { ref: true, deleteRule: 'cascade' })
  project!: Ref<Project>;

  @Field(() => VersionAction)
  @Enum({ items: () => VersionAction, nativeEnumName: 'version_action' })
  action!: VersionAction;

  @Field(() => VersionTag)
  @Enum({ items: () => VersionTag, nativeEnumName: 'version_tag' })
  fromTag!: VersionTag;

  @Field(() => VersionTag)
  @Enum({ items: () => VersionTag, nativeEnumName: 'version_tag' })
  toTag!: VersionTag;

  @ManyToOne(() => User, { ref: true, nullable: true, deleteRule: 'set null' })
  actor?: Ref<User> | null;

  @Field(() => String, { nullable: true, description: 'A service actor, when no user acted' })
  @Property({ type: 'text', nullable: true })
  actorLabel?: string | null;

  @Field(() => String)
  @Property({ type: 'text' })
  reason!: string;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  configHash?: string | null;
}

/** A project's bar for a metric: `metric <operator> threshold`. Only active baselines judge evaluations. */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'baselines' })
@Unique({ properties: ['project', 'metricKey'] })
export class Baseline extends TimestampedEntity {
  @ManyToOne(() => Project, { ref: true, deleteRule: 'cascade' })
  project!: Ref<Project>;

  @Field()
  @Property({ type: 'text' })
  metricKey!: string;

  @Field(() => DecimalScalar)
  @Property({ type: 'decimal', precision: 18, scale: 6 })
  threshold!: string;

  @Field(() => BaselineOperator)
  @Enum({ items: () => BaselineOperator, nativeEnumName: 'baseline_operator' })
  operator!: BaselineOperator;

  @Field(() => Boolean)
  @Property({ type: 'boolean', default: true })
  active: Opt<boolean> = true;
}
