import { BigIntType, Entity, Index, ManyToOne, Property, type Opt, type Ref } from '@mikro-orm/core';
import { Field, Float, ObjectType } from 'type-graphql';
import { BaseEntity } from '../../shared/base.entity.js';
import { User } from '../identity/user.entity.js';
import { Task } from './task.entity.js';

/**
 * A file attached to a task. Created with its declared name, type and size;
 * the bytes arrive by an authenticated PUT that enforces them and computes the sha256.
 * Until then `uploadedAt` is null and it cannot be downloaded.
 */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'file_attachments' })
@Index({ properties: ['task'] })
@Index({ properties: ['expiresAt'] })
export class FileAttachment extends BaseEntity {
  @ManyToOne(() => Task, { ref: true, deleteRule: 'cascade' })
  task!: Ref<Task>;

  @ManyToOne(() => User, { ref: true, nullable: true, deleteRule: 'set null' })
  uploadedBy?: Ref<User> | null;

  /** The name on disk (the attachment's id): never the client's name. */
  @Property({ type: 'text' })
  storedName!: string;

  @Field()
  @Property({ type: 'text' })
  originalName!: string;

  @Field()
  @Property({ type: 'text' })
  mimeType!: string;

  @Field(() => Float, { description: 'Bytes, as declared and enforced' })
  // As a JS number (MikroORM's bare 'bigint' is a JS bigint, which GraphQL cannot serialise);
  // sizes are capped far below Number.MAX_SAFE_INTEGER.
  @Property({ type: new BigIntType('number') })
  sizeBytes!: number;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  sha256?: string | null;

  @Property({ type: 'text' })
  storagePath!: string;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  uploadedAt?: Date | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'timestamptz', nullable: true })
  expiresAt?: Date | null;

  @Field(() => Boolean)
  @Property({ type: 'boolean', default: false })
  isEncrypted: Opt<boolean> = false;
}
