import { Entity, Index, ManyToOne, Property, type Opt, type Ref } from '@mikro-orm/core';
import { Field, ID, ObjectType } from 'type-graphql';
import { BaseEntity } from '../../shared/base.entity.js';
import { User } from './user.entity.js';

/** Every API token starts with this, so a leaked one is recognisable (and secret scanners can find it). */
export const API_TOKEN_PREFIX = 'stw_';

/**
 * A token for programs (token_hash). Personal tokens act as their user;
 * service tokens (created by an admin) act as a named system actor such as an agent
 * or a container runtime, and may run only operations that accept services.
 * 256 random bits, shown once; only the SHA-256 is stored (a slow hash adds nothing
 * to a secret of that entropy and would cost ~20 ms per request).
 */
@ObjectType('ApiToken', { simpleResolvers: true })
@Entity({ tableName: 'api_tokens' })
export class ApiToken extends BaseEntity {
  @Index()
  @ManyToOne(() => User, { ref: true, deleteRule: 'cascade' })
  user!: Ref<User>;

  @Field()
  @Property({ type: 'text' })
  name!: string;

  /** The first characters of the token, to recognise it in a list. */
  @Field()
  @Property({ type: 'text' })
  prefix!: string;

  @Property({ type: 'text', unique: true, hidden: true })
  tokenHash!: string;

  @Field(() => [String])
  @Property({ type: 'text[]', default: '{}' })
  scopes: Opt<string[]> = [];

  /** Set on service tokens: the system actor it speaks for, e.g. `agent:senior-engineer`. */
  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  serviceActor?: string | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  expiresAt?: Date | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  revokedAt?: Date | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  lastUsedAt?: Date | null;

  // ---- Scopes (see src/shared/token-scopes.ts; `scopes` above holds their names) ----

  /** The projects the token may act in; empty: every project its user (or service) may reach. */
  @Field(() => [ID], {
    description: 'The projects the token may act in; empty: every project its user (or service) may reach',
  })
  @Property({ type: 'uuid[]', default: '{}' })
  projectIds: Opt<string[]> = [];
  // ---- virtual key (the AI gateway, src/modules/gateway): all optional; the user's own limits always apply too ----
  /** Models the key may call (names as /v1/models lists them); null: every model the user may use. */
  @Property({ type: 'text[]', nullable: true }) allowedModels?: string[] | null;
  /** The task that governs every call of the key (X-Steward-Task may only repeat it). */
  @Property({ type: 'uuid', nullable: true }) boundTaskId?: string | null;
  /** The project the key's calls are attributed to (a task named must belong to it). */
  @Property({ type: 'uuid', nullable: true }) boundProjectId?: string | null;
  @Property({ type: 'decimal', precision: 18, scale: 6, nullable: true }) dailyCostLimitUsd?: string | null;
  @Property({ type: 'decimal', precision: 18, scale: 6, nullable: true }) monthlyCostLimitUsd?: string | null;
  @Property({ type: 'bigint', nullable: true }) dailyTokenLimit?: string | null;
  @Property({ type: 'integer', nullable: true }) requestsPerMinute?: number | null;
}
