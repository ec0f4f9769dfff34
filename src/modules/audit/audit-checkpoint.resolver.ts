import { Arg, Ctx, Field, Float, Int, ObjectType, Query, Resolver } from 'type-graphql';
import type { Context } from '../../server/context.js';
import { Allow } from '../../shared/allow.js';
import { BadInputError } from '../../shared/errors.js';
import { CHECKPOINT_PAYLOAD } from './audit-checkpoints.js';

@ObjectType({ description: "What verifies the audit trail's signed checkpoints, anywhere, without Steward's key." })
export class AuditCheckpointKey {
  @Field() algorithm!: string;
  @Field({ description: 'The Ed25519 public key (SPKI, PEM)' }) publicKeyPem!: string;
  @Field({ description: 'What each signature covers' }) signedPayload!: string;
}

@ObjectType({ description: 'A signed statement: at `at`, link `seq` of the audit chain had hash `hash`.' })
export class AuditCheckpoint {
  @Field(() => Float) seq!: number;
  @Field() hash!: string;
  @Field({ description: 'Exactly the text that was signed (ISO 8601)' }) at!: string;
  @Field({ description: 'Ed25519 signature, base64url' }) signature!: string;
}

/**
 * Offline verification of the audit trail: the public key and the signed checkpoints,
 * together with GET /exports/audit.jsonl (each event with seq and hash), let an auditor
 * check, without Steward or its key, that the chain they were given is the one that was
 * signed. Admins, like the rest of the audit trail.
 */
@Resolver()
@Allow('ADMIN')
export class AuditCheckpointResolver {
  @Query(() => AuditCheckpointKey, { description: "The key that verifies the audit trail's checkpoints. Admins." })
  auditCheckpointKey(@Ctx() ctx: Context): AuditCheckpointKey {
    return {
      algorithm: 'Ed25519',
      publicKeyPem: ctx.services.audit.checkpoints.publicKeyPem(),
      signedPayload: CHECKPOINT_PAYLOAD,
    };
  }

  @Query(() => [AuditCheckpoint], {
    description:
      "The latest signed checkpoints of this instance's checkpoint file (AUDIT_CHECKPOINT_FILE), oldest first; only those whose signature holds. Admins.",
  })
  auditCheckpoints(
    @Arg('last', () => Int, { defaultValue: 20, description: 'How many, 1 to 1000' }) last: number,
    @Ctx() ctx: Context,
  ): AuditCheckpoint[] {
    if (!Number.isInteger(last) || last < 1 || last > 1000) throw BadInputError.field('last', 'must be 1 to 1000');
    return ctx.services.audit.checkpoints
      .read()
      .valid.slice(-last)
      .map((c) => ({ seq: c.seq, hash: c.hash, at: c.at, signature: c.sig }));
  }
}
