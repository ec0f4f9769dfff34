import { Entity, Index, Property, type Opt } from '@mikro-orm/core';
import { GraphQLJSONObject } from 'graphql-scalars';
import { Field, ObjectType } from 'type-graphql';
import { TimestampedEntity } from '../../shared/base.entity.js';

/** The knowledge base: searched with PostgreSQL full-text search, added to ASSISTANT calls as context. */
@ObjectType({ simpleResolvers: true })
@Entity({ tableName: 'knowledge_entries' })
@Index({ properties: ['category', 'active'] })
@Index({
  name: 'knowledge_entries_fulltext_index',
  expression: `create index "knowledge_entries_fulltext_index" on "knowledge_entries" using gin (to_tsvector('english', "title" || ' ' || "content"))`,
})
export class KnowledgeEntry extends TimestampedEntity {
  @Field()
  @Property({ type: 'text' })
  title!: string;

  @Field()
  @Property({ type: 'text' })
  content!: string;

  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true })
  category?: string | null;

  @Field(() => GraphQLJSONObject)
  @Property({ type: 'jsonb', default: '{}' })
  metadata: Opt<Record<string, unknown>> = {};

  /** E.g. a Pinecone id: the entry's id in an external vector index. */
  @Field(() => String, { nullable: true })
  @Property({ type: 'text', nullable: true, unique: true })
  externalVectorId?: string | null;

  @Field(() => Boolean)
  @Property({ type: 'boolean', default: true })
  active: Opt<boolean> = true;
}
