import { Field, Float, ID, Int, ObjectType } from 'type-graphql';

@ObjectType({ description: 'The outcome of walking the audit hash chain from its first link.' })
export class AuditChainVerification {
  @Field({ description: 'Every link follows the previous one, matches its content, and the chain ends at its head' })
  ok!: boolean;
  @Field(() => Int, { description: 'Links examined: all of them when ok, up to the first broken one otherwise' })
  checked!: number;
  @Field(() => ID, {
    nullable: true,
    description: 'The first event whose link is broken (null when ok, or when links were cut off the end)',
  })
  firstBrokenId!: string | null;
  @Field(() => Float, { nullable: true, description: 'The place in the chain where it first breaks' }) firstBrokenSeq!:
    number | null;
  @Field(() => String, { nullable: true }) reason!: string | null;
  @Field(() => Int, { description: 'Events linked by this verification before the walk' }) sealed!: number;
  @Field(() => Int, { description: 'Events committed during the walk, not yet linked' }) pending!: number;
  @Field(() => Float, { description: 'The last link (its seq)' }) headSeq!: number;
  @Field({ description: "The last link's hash: keep it elsewhere to detect a rewrite of the whole chain later" })
  headHash!: string;
}
