import { Entity, Enum, ManyToOne, Property, type Opt, type Ref } from '@mikro-orm/core';
import { Field, Int, ObjectType } from 'type-graphql';
import { BaseEntity } from '../../shared/base.entity.js';
import { Role, User } from './user.entity.js';

/** An invitation code (hash stored; the code is shown once), optionally bound to one e-mail. */
@ObjectType('Invitation', { simpleResolvers: true })
@Entity({ tableName: 'invitations' })
export class Invitation extends BaseEntity {
  @Property({ type: 'text', unique: true, hidden: true })
  codeHash!: string;

  @Field(() => Role)
  @Enum({ items: () => Role, nativeEnumName: 'role' })
  role!: Role;

  @Field(() => Int)
  @Property({ type: 'integer' })
  maxUses!: number;

  @Field(() => Int)
  @Property({ type: 'integer', default: 0 })
  uses: Opt<number> = 0;

  @Field(() => Date)
  @Property({ type: 'timestamptz' })
  expiresAt!: Date;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  email?: string | null;

  @ManyToOne(() => User, { ref: true, nullable: true, deleteRule: 'set null' })
  createdBy?: Ref<User> | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  revokedAt?: Date | null;
}
