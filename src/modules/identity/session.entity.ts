import { Entity, Index, ManyToOne, Property, type Ref } from '@mikro-orm/core';
import { Field, ObjectType } from 'type-graphql';
import { BaseEntity } from '../../shared/base.entity.js';
import { User } from './user.entity.js';

/**
 * A refresh token. Each rotation creates a new Session in the same family and marks
 * the old one `rotatedAt`; presenting a rotated token again is reuse, which revokes
 * the whole family (the token was copied). Only the token's SHA-256 is stored.
 */
@ObjectType('Session', { simpleResolvers: true })
@Entity({ tableName: 'sessions' })
@Index({ properties: ['user', 'revokedAt'] })
@Index({ properties: ['expiresAt'] })
export class Session extends BaseEntity {
  @ManyToOne(() => User, { ref: true, deleteRule: 'cascade' })
  user!: Ref<User>;

  @Index()
  @Property({ type: 'uuid' })
  familyId!: string;

  @Property({ type: 'text', unique: true, hidden: true })
  refreshTokenHash!: string;

  @Field(() => Date)
  @Property({ type: 'timestamptz' })
  expiresAt!: Date;

  @Property({ type: 'timestamptz', nullable: true })
  rotatedAt?: Date | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  revokedAt?: Date | null;

  @Property({ type: 'text', nullable: true })
  revokedReason?: string | null;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  device?: string | null;

  @Field(() => String, { nullable: true })
  @Property({ type: 'inet', nullable: true })
  ip?: string | null;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  userAgent?: string | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  lastUsedAt?: Date | null;
}
