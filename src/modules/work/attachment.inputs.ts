import { IsInt, IsUUID, Length, Max, Min } from 'class-validator';
import { Field, Float, ID, InputType } from 'type-graphql';

/**
 * A new attachment's declaration. Only the shape is checked here; the rules that depend
 * on settings (allowed types, ATTACHMENT_MAX_BYTES) and the name's sanitising live in
 * attachment.service.ts, so jobs and tests meet the same rules.
 */
@InputType()
export class CreateFileAttachmentInput {
  @Field(() => ID) @IsUUID() taskId!: string;

  @Field({ description: "The file's name as the client knows it; any directory part is dropped. Never used on disk." })
  @Length(1, 255)
  originalName!: string;

  @Field({
    description:
      "One of the allowed types (setting ATTACHMENT_MIME_TYPES); the upload's Content-Type must be the same.",
  })
  @Length(3, 255)
  mimeType!: string;

  @Field(() => Float, {
    description: 'Exact size in bytes, from 1 to ATTACHMENT_MAX_BYTES; the upload must be exactly this long.',
  })
  @IsInt()
  @Min(1)
  @Max(Number.MAX_SAFE_INTEGER)
  sizeBytes!: number;

  @Field(() => Date, { nullable: true, description: 'When the attachment (row and file) is removed; in the future.' })
  expiresAt?: Date | null;
}
