import { Entity, ManyToOne, Property, Unique, type Opt, type Ref } from '@mikro-orm/core';
import { Field, ObjectType } from 'type-graphql';
import { TimestampedEntity } from '../../shared/base.entity.js';
import type { SealedSecret } from '../../shared/crypto.js';
import { User } from '../identity/user.entity.js';
import { Provider } from './provider.entity.js';

/** A user's own key for a provider (user_providers), used before the platform's. */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'user_provider_keys' })
@Unique({ properties: ['user', 'provider'] })
export class UserProviderKey extends TimestampedEntity {
  @ManyToOne(() => User, { ref: true, deleteRule: 'cascade' }) user!: Ref<User>;
  @ManyToOne(() => Provider, { ref: true, deleteRule: 'cascade' }) provider!: Ref<Provider>;
  /** Envelope-encrypted, bound to `user:<id>|provider:<id>`. */
  @Property({ type: 'jsonb', hidden: true }) sealed!: SealedSecret;
  @Field() @Property({ type: 'text' }) last4!: string;
  @Field(() => Boolean) @Property({ type: 'boolean', default: true }) active: Opt<boolean> = true;
}
