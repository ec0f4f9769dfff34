import { IsEmail, IsUUID, Length, Matches, Max, MaxLength, Min } from 'class-validator';
import { GraphQLJSONObject } from 'graphql-scalars';
import { Field, ID, InputType, Int, ObjectType } from 'type-graphql';
import { PASSWORD_MAX, PASSWORD_MIN } from './password.js';
import { ApiToken } from './api-token.entity.js';
import { Invitation } from './invitation.entity.js';
import { Role, Tier, User, UserStatus } from './user.entity.js';

const USERNAME = /^[a-zA-Z0-9_.-]{3,32}$/;

@InputType()
export class SignUpInput {
  @Field() @IsEmail() @MaxLength(254) email!: string;
  @Field({ description: '3–32 letters, digits, dots, dashes or underscores' })
  @Matches(USERNAME, { message: 'username must be 3–32 letters, digits, dots, dashes or underscores' })
  username!: string;
  @Field({ description: `${PASSWORD_MIN}–${PASSWORD_MAX} characters` })
  @Length(PASSWORD_MIN, PASSWORD_MAX)
  password!: string;
  @Field(() => String, { nullable: true }) @MaxLength(100) name?: string | null;
  @Field(() => String, { nullable: true }) @MaxLength(200) invitationCode?: string | null;
}

@InputType()
export class LoginInput {
  @Field({ description: 'E-mail or username' }) @MaxLength(254) login!: string;
  @Field() @MaxLength(PASSWORD_MAX) password!: string;
  @Field(() => String, { nullable: true }) @MaxLength(10) totpCode?: string | null;
}

@InputType()
export class RefreshSessionInput {
  @Field() @MaxLength(200) refreshToken!: string;
}

@InputType()
export class ChangePasswordInput {
  @Field() @MaxLength(PASSWORD_MAX) currentPassword!: string;
  @Field() @Length(PASSWORD_MIN, PASSWORD_MAX) newPassword!: string;
}

@InputType()
export class RequestPasswordResetInput {
  @Field() @IsEmail() @MaxLength(254) email!: string;
}

@InputType()
export class ResetPasswordInput {
  @Field() @MaxLength(200) token!: string;
  @Field() @Length(PASSWORD_MIN, PASSWORD_MAX) newPassword!: string;
  @Field(() => Boolean, {
    nullable: true,
    description: 'Revoke your API tokens too (when you fear they leaked with the password)',
  })
  revokeApiTokens?: boolean | null;
}

@InputType()
export class TotpCodeInput {
  @Field() @Matches(/^\d{6}$/, { message: 'code must be 6 digits' }) code!: string;
}

@InputType()
export class UpdateMeInput {
  @Field(() => String, { nullable: true }) @MaxLength(100) name?: string | null;
  @Field(() => String, { nullable: true })
  @Matches(USERNAME, { message: 'username must be 3–32 letters, digits, dots, dashes or underscores' })
  username?: string | null;
  @Field(() => GraphQLJSONObject, { nullable: true }) preferences?: Record<string, unknown> | null;
}

@InputType()
export class CreateApiTokenInput {
  @Field() @Length(1, 100) name!: string;
  @Field(() => Date, { nullable: true }) expiresAt?: Date | null;
  @Field(() => [String], {
    nullable: true,
    description: 'Named sets of operations (see tokenScopes); none: everything you may do',
  })
  scopes?: string[] | null;
  @Field(() => [ID], {
    nullable: true,
    description: 'The projects the token may act in; none: every project you may reach',
  })
  projectIds?: string[] | null;
}

@InputType()
export class CreateServiceTokenInput {
  @Field() @Length(1, 100) name!: string;
  @Field({ description: 'The system actor the token speaks for, e.g. "agent:senior-engineer" or "runtime:docker"' })
  @Matches(/^[a-z][a-z0-9-]*:[a-z0-9][a-z0-9._-]{0,62}$/, { message: 'serviceActor must look like "kind:name"' })
  serviceActor!: string;
  @Field(() => Date, { nullable: true, description: 'Required: a service token always expires' })
  expiresAt?: Date | null;
  @Field(() => [String], {
    nullable: true,
    description: 'Required: named sets of operations (see tokenScopes), at least one',
  })
  scopes?: string[] | null;
  @Field(() => [ID], {
    nullable: true,
    description: 'The projects the token may act in; none: every project that is not deleted',
  })
  projectIds?: string[] | null;
}

@InputType()
export class CreateInvitationInput {
  @Field(() => Role) role!: Role;
  @Field(() => Int) @Min(1) @Max(10_000) maxUses!: number;
  @Field(() => Date) expiresAt!: Date;
  @Field(() => String, { nullable: true }) @IsEmail() @MaxLength(254) email?: string | null;
}

@InputType()
export class UpdateUserInput {
  @Field(() => ID) @IsUUID() id!: string;
  @Field(() => Role, { nullable: true }) role?: Role | null;
  @Field(() => UserStatus, { nullable: true }) status?: UserStatus | null;
  @Field(() => Tier, { nullable: true }) tier?: Tier | null;
}

@InputType()
export class BlockUserInput {
  @Field(() => ID) @IsUUID() id!: string;
  @Field() @Length(1, 500) reason!: string;
}

@InputType()
export class UserWhere {
  @Field(() => Role, { nullable: true }) role?: Role | null;
  @Field(() => UserStatus, { nullable: true }) status?: UserStatus | null;
  @Field(() => Tier, { nullable: true }) tier?: Tier | null;
  @Field(() => Boolean, { nullable: true }) isBlocked?: boolean | null;
  @Field(() => String, { nullable: true, description: 'Matches e-mail, username or name' }) @MaxLength(100) search?:
    string | null;
}

@ObjectType()
export class AuthPayload {
  @Field() accessToken!: string;
  @Field() refreshToken!: string;
  @Field(() => User) user!: User;
}

@ObjectType()
export class CreatedApiToken {
  @Field({ description: 'Shown once; only its hash is stored' }) token!: string;
  @Field(() => ApiToken) apiToken!: ApiToken;
}

@ObjectType()
export class CreatedInvitation {
  @Field({ description: 'Shown once; only its hash is stored' }) code!: string;
  @Field(() => Invitation) invitation!: Invitation;
}

@ObjectType()
export class TotpEnrollment {
  @Field({ description: 'Base32 secret, for entering by hand' }) secret!: string;
  @Field({ description: 'otpauth:// URI for authenticator apps (QR code)' }) otpauthUri!: string;
}
