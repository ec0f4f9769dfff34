import type { GraphQLResolveInfo } from 'graphql';
import sql from 'sql-template-tag';
import { Arg, Ctx, Field, FieldResolver, ID, Info, Mutation, ObjectType, Query, Resolver, Root } from 'type-graphql';
import type { Context } from '../../server/context.js';
import { Viewer } from '../../server/viewer.js';
import { Allow } from '../../shared/allow.js';
import { isUuid } from '../../shared/errors.js';
import { idOf, readModel, type RowOf } from '../../shared/read-model.js';
import { selectedFields } from '../../shared/selection.js';
import { required, visibleTask } from '../../shared/visibility.js';
import { User } from '../identity/user.entity.js';
import { CreateFileAttachmentInput } from './attachment.inputs.js';
import { FileAttachment } from './file-attachment.entity.js';
import { Task } from './task.entity.js';

@ObjectType({ description: 'A declared attachment and where to PUT its bytes.' })
export class CreatedFileAttachment {
  @Field(() => FileAttachment)
  attachment!: FileAttachment;

  @Field({
    description:
      'PUT the file here, once, with `Authorization: Bearer <the same access token>`, `Content-Type` equal to the declared mimeType and exactly sizeBytes bytes. Answers 200 {id, sha256, sizeBytes}; 409 if already uploaded, 413 longer, 400 shorter, 415 another type.',
  })
  uploadUrl!: string;
}

type Row = Record<string, unknown> & { id: string };
/** Not yet expired (the removal job deletes the rest within a minute). */
const live = sql`(t."expires_at" IS NULL OR t."expires_at" > now())`;

/**
 * File attachments. Who may do what is the service's (AttachmentService): the
 * bytes themselves go over plain HTTP (attachment.routes.ts), not GraphQL.
 */
@Resolver(() => FileAttachment)
@Allow('SIGNED_IN')
export class AttachmentResolver {
  @Query(() => FileAttachment, {
    nullable: true,
    description: 'An attachment of a task you may see (null otherwise, and once expired).',
  })
  fileAttachment(
    @Arg('id', () => ID) id: string,
    @Viewer() viewer: Viewer,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    if (!isUuid(id)) return null;
    const visible = sql`${live} AND EXISTS (SELECT 1 FROM tasks vt WHERE vt.id = t."task_id" AND ${ctx.services.taskPolicy.visible(viewer, 'vt')})`;
    return ctx.loaders
      .byId(readModel(FileAttachment), [...selectedFields(info), 'uploadedAt', 'task', 'uploadedBy'], visible)
      .load(id.toLowerCase());
  }

  @Mutation(() => CreatedFileAttachment, {
    description:
      'Declares a file for a task (CONTRIBUTOR or higher); upload its bytes to uploadUrl. Never-uploaded declarations are removed after 24 hours.',
  })
  createFileAttachment(@Arg('input') input: CreateFileAttachmentInput, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.attachments.create(ctx, viewer, input);
  }

  @Mutation(() => Boolean, {
    description: 'Removes the attachment and its file: its uploader (CONTRIBUTOR or higher) or MAINTAINER or higher.',
  })
  deleteFileAttachment(@Arg('id', () => ID) id: string, @Viewer() viewer: Viewer, @Ctx() ctx: Context) {
    return ctx.services.attachments.delete(ctx, viewer, id);
  }

  @FieldResolver(() => String, {
    nullable: true,
    description: 'GET it with the bearer token; null until the file is uploaded.',
  })
  downloadUrl(@Root() a: RowOf<FileAttachment>, @Ctx() ctx: Context) {
    return ctx.services.attachments.downloadUrl(a);
  }

  @FieldResolver(() => Task)
  task(@Root() a: RowOf<FileAttachment>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return required(visibleTask(ctx, info, idOf(a.task)), 'Task', idOf(a.task));
  }

  @FieldResolver(() => User, { nullable: true, description: 'Who declared (and uploads) it.' })
  uploadedBy(@Root() a: RowOf<FileAttachment>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders.relation(a.uploadedBy, readModel(User), selectedFields(info));
  }
}

/** `Task.attachments`, beside TaskResolver: one statement per level however many tasks. */
@Resolver(() => Task)
@Allow('SIGNED_IN')
export class TaskAttachmentsResolver {
  @FieldResolver(() => [FileAttachment], {
    description: 'Oldest first, uploads still pending included, expired ones not.',
  })
  attachments(@Root() t: RowOf<Task>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders
      .byForeignKey<Row>(
        readModel(FileAttachment),
        'task',
        [...selectedFields(info), 'uploadedAt', 'task', 'uploadedBy'],
        { where: live },
      )
      .load(t.id);
  }
}
