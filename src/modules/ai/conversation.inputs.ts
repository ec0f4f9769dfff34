import { IsUUID, Length, MaxLength } from 'class-validator';
import { Field, ID, InputType, Int, ObjectType } from 'type-graphql';

/** The longest message a user may send (characters). The provider's own context limit applies on top. */
export const MAX_MESSAGE_CHARS = 32_000;

@InputType()
export class StartConversationInput {
  @Field(() => ID, { nullable: true, description: 'An active agent; none: the ASSISTANT.' }) @IsUUID() agentId?:
    string | null;
  @Field(() => ID, {
    nullable: true,
    description: "A project you are CONTRIBUTOR or higher in. With only taskId, the task's project.",
  })
  @IsUUID()
  projectId?: string | null;
  @Field(() => ID, { nullable: true, description: 'A task you may work on; its allowed intents govern the prompts.' })
  @IsUUID()
  taskId?: string | null;
  @Field(() => ID, { nullable: true, description: 'An active provider; none: the platform chooses.' })
  @IsUUID()
  providerId?: string | null;
  @Field(() => String, { nullable: true }) @MaxLength(200) title?: string | null;
}

@InputType()
export class SendMessageInput {
  @Field(() => ID) @IsUUID() conversationId!: string;
  @Field({ description: `1–${MAX_MESSAGE_CHARS} characters, not only white space.` })
  @Length(1, MAX_MESSAGE_CHARS)
  content!: string;
}

@InputType()
export class ConversationWhere {
  @Field(() => ID, {
    nullable: true,
    description: "Admins: this user's conversations. Others: only their own id is accepted.",
  })
  @IsUUID()
  userId?: string | null;
  @Field(() => Boolean, { nullable: true, description: "Admins: everyone's conversations." }) allUsers?: boolean | null;
  @Field(() => ID, { nullable: true }) @IsUUID() agentId?: string | null;
  @Field(() => ID, { nullable: true }) @IsUUID() projectId?: string | null;
  @Field(() => ID, { nullable: true }) @IsUUID() taskId?: string | null;
  @Field(() => Boolean, { nullable: true, description: 'Active (true) or archived (false)' }) active?: boolean | null;
}

@ObjectType({ simpleResolvers: true, description: 'A piece of an assistant reply as the provider streams it.' })
export class MessageChunk {
  @Field(() => ID) conversationId!: string;
  @Field(() => ID, {
    nullable: true,
    description: "The id the assistant's message has once stored (see messageAdded).",
  })
  messageId?: string | null;
  @Field() delta!: string;
  @Field(() => Int, { description: '0, 1, 2, … in the order of the reply.' }) index!: number;
  @Field({ description: 'The last chunk of the reply.' }) done!: boolean;
  @Field(() => String, {
    nullable: true,
    description: 'On the last chunk of a call that failed: its error code; nothing of the exchange is stored.',
  })
  error?: string | null;
}
