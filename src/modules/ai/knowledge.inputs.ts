import { IsUUID, Length, Matches, MaxLength } from 'class-validator';
import { GraphQLJSONObject } from 'graphql-scalars';
import { Field, Float, ID, InputType, ObjectType } from 'type-graphql';
import { KnowledgeEntry } from './knowledge-entry.entity.js';

/** Categories are short keys (e.g. `hair_education`, `business_mentorship`). */
const CATEGORY = /^[\w.:-]{1,100}$/;
const CATEGORY_MESSAGE = 'category must be 1–100 letters, digits, underscores, dots, colons or dashes';

@InputType()
export class CreateKnowledgeEntryInput {
  @Field() @Length(1, 300) title!: string;
  @Field({ description: 'The text searched and given to the assistant as context (at most 100,000 characters).' })
  @Length(1, 100_000)
  content!: string;
  @Field(() => String, { nullable: true }) @Matches(CATEGORY, { message: CATEGORY_MESSAGE }) category?: string | null;
  @Field(() => GraphQLJSONObject, { nullable: true }) metadata?: Record<string, unknown> | null;
  @Field(() => String, {
    nullable: true,
    description: "The entry's id in an external vector index (e.g. a Pinecone id); unique.",
  })
  @Length(1, 200)
  externalVectorId?: string | null;
}

@InputType()
export class UpdateKnowledgeEntryInput {
  @Field(() => ID) @IsUUID() id!: string;
  @Field(() => String, { nullable: true }) @Length(1, 300) title?: string | null;
  @Field(() => String, { nullable: true }) @Length(1, 100_000) content?: string | null;
  @Field(() => String, { nullable: true, description: 'null clears it' })
  @Matches(CATEGORY, { message: CATEGORY_MESSAGE })
  category?: string | null;
  @Field(() => GraphQLJSONObject, { nullable: true, description: 'Replaces the metadata' }) metadata?: Record<
    string,
    unknown
  > | null;
  @Field(() => String, { nullable: true, description: 'null clears it' }) @Length(1, 200) externalVectorId?:
    string | null;
  @Field(() => Boolean, { nullable: true, description: 'true reactivates a deactivated entry' }) active?:
    boolean | null;
}

@InputType()
export class KnowledgeEntryWhere {
  @Field(() => String, { nullable: true }) @MaxLength(100) category?: string | null;
  @Field(() => Boolean, { nullable: true, description: 'Admins only; everyone else sees active entries.' }) active?:
    boolean | null;
  @Field(() => String, {
    nullable: true,
    description: 'Full-text search over title and content (web search syntax: "quoted", -not, or)',
  })
  @MaxLength(200)
  search?: string | null;
  @Field(() => String, { nullable: true }) @MaxLength(200) externalVectorId?: string | null;
}

@ObjectType({ simpleResolvers: true, description: 'A full-text match: the entry and its ts_rank.' })
export class KnowledgeSearchHit {
  @Field(() => KnowledgeEntry) entry!: KnowledgeEntry;
  @Field(() => Float) rank!: number;
}
