import { Entity, Enum, Index, Property, type Opt } from '@mikro-orm/core';
import { Field, ObjectType, registerEnumType } from 'type-graphql';
import { TimestampedEntity } from '../../shared/base.entity.js';

export enum Role {
  ADMIN = 'ADMIN',
  USER = 'USER',
  /** Reads what it may see and changes nothing but its own account (a read-only member). */
  OBSERVER = 'OBSERVER',
}
export enum UserStatus {
  ACTIVE = 'ACTIVE',
  INACTIVE = 'INACTIVE',
  SUSPENDED = 'SUSPENDED',
}
/** Membership tier: sets the default monthly message limit. */
export enum Tier {
  BASIC = 'BASIC',
  PREMIUM = 'PREMIUM',
  VIP = 'VIP',
}
registerEnumType(Role, { name: 'Role' });
registerEnumType(UserStatus, { name: 'UserStatus' });
registerEnumType(Tier, { name: 'Tier' });

/**
 * One user for every capability: quota and behaviour fields (prompt governance),
 * username/role/status/preferences, a membership tier, argon2id, TOTP and
 * lockout. Email and username are stored lower-cased so uniqueness ignores case.
 */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'users' })
@Index({ properties: ['role', 'status'] })
export class User extends TimestampedEntity {
  // GraphQL field: src/modules/identity/user.fields.ts (who may see it).
  @Property({ type: 'text', unique: true })
  email!: string;

  @Field()
  @Property({ type: 'text', unique: true })
  username!: string;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  name?: string | null;

  /** argon2id; never exposed. */
  @Property({ type: 'text', hidden: true })
  passwordHash!: string;

  @Field(() => Role)
  @Enum({ items: () => Role, nativeEnumName: 'role', default: Role.USER })
  role: Opt<Role> = Role.USER;

  @Field(() => UserStatus)
  @Enum({ items: () => UserStatus, nativeEnumName: 'user_status', default: UserStatus.ACTIVE })
  status: Opt<UserStatus> = UserStatus.ACTIVE;

  @Field(() => Tier)
  @Enum({ items: () => Tier, nativeEnumName: 'tier', default: Tier.BASIC })
  tier: Opt<Tier> = Tier.BASIC;

  @Field(() => Boolean)
  @Property({ type: 'boolean', default: false })
  verified: Opt<boolean> = false;

  /** Envelope-encrypted TOTP secret (JSON), present once enrolment started. */
  @Property({ type: 'jsonb', nullable: true, hidden: true })
  totpSecret?: Record<string, string> | null;

  // GraphQL field: src/modules/identity/user.fields.ts (who may see it).
  @Property({ type: 'boolean', default: false })
  totpEnabled: Opt<boolean> = false;

  /** The last accepted TOTP time step: a code is accepted once. */
  @Property({ type: 'bigint', nullable: true, hidden: true })
  totpLastStep?: string | null;

  @Property({ type: 'integer', default: 0 })
  failedLoginAttempts: Opt<number> = 0;

  @Property({ type: 'timestamptz', nullable: true })
  lockedUntil?: Date | null;

  @Field(() => Boolean)
  @Property({ type: 'boolean', default: false })
  isBlocked: Opt<boolean> = false;

  // GraphQL field: src/modules/identity/user.fields.ts (who may see it).
  @Property({ type: 'text', nullable: true })
  blockedReason?: string | null;

  // GraphQL field: src/modules/identity/user.fields.ts (who may see it).
  @Property({ type: 'timestamptz', nullable: true })
  blockedAt?: Date | null;

  /** Prompt-governance deviation score, 0–100. */
  // GraphQL field: src/modules/identity/user.fields.ts (who may see it).
  @Property({ type: 'decimal', precision: 6, scale: 2, default: 0 })
  deviationScore: Opt<string> = '0';

  // GraphQL field: src/modules/identity/user.fields.ts (who may see it).
  @Property({ type: 'timestamptz', nullable: true })
  lastActivityAt?: Date | null;

  // GraphQL field: src/modules/identity/user.fields.ts (who may see it).
  @Property({ type: 'timestamptz', nullable: true })
  lastLoginAt?: Date | null;

  @Property({ type: 'jsonb', default: '{}' })
  preferences: Opt<Record<string, unknown>> = {};
}
