import {
  ArrayMaxSize,
  IsInt,
  IsUUID,
  IsUrl,
  Length,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';
import { GraphQLJSON, GraphQLJSONObject } from 'graphql-scalars';
import { Field, Float, ID, InputType, Int } from 'type-graphql';
import { ContainerStatus } from './container.entity.js';
import { McpServerStatus } from './mcp-server.entity.js';

// ---------- containers ----------

@InputType()
export class CreateContainerInput {
  @Field(() => ID) @IsUUID() projectId!: string;
  @Field(() => Float, {
    nullable: true,
    description: 'CPU cores, 0.1 to CONTAINER_MAX_CPU (default CONTAINER_DEFAULT_CPU)',
  })
  cpuLimit?: number | null;
  @Field(() => Int, {
    nullable: true,
    description: 'MiB, 64 to CONTAINER_MAX_MEMORY_MB (default CONTAINER_DEFAULT_MEMORY_MB)',
  })
  memoryLimitMb?: number | null;
  @Field(() => String, { nullable: true, description: 'Unique in the project; default "dev", then "dev-2", …' })
  @Matches(/^[a-z0-9][a-z0-9_.-]{0,62}$/, { message: 'name must be 1-63 lowercase letters, digits, ".", "_" or "-"' })
  name?: string | null;
  @Field(() => String, { nullable: true }) @Length(1, 300) image?: string | null;
}

@InputType()
export class UpdateContainerInput {
  @Field(() => ID) @IsUUID() id!: string;
  @Field(() => Float, { nullable: true }) cpuLimit?: number | null;
  @Field(() => Int, { nullable: true }) memoryLimitMb?: number | null;
}

@InputType()
export class ReportContainerStatusInput {
  @Field(() => ID) @IsUUID() id!: string;
  @Field(() => ContainerStatus) status!: ContainerStatus;
  @Field(() => String, { nullable: true, description: "The runtime's id for the container" })
  @Length(1, 200)
  runtimeId?: string | null;
  @Field(() => String, { nullable: true }) @IsUrl({ require_tld: false }) @MaxLength(500) previewUrl?: string | null;
  @Field(() => String, { nullable: true, description: 'Why (an error message, say)' }) @MaxLength(2000) message?:
    string | null;
}

@InputType()
export class ContainerWhere {
  @Field(() => ID, { nullable: true }) @IsUUID() projectId?: string | null;
  @Field(() => [ContainerStatus], { nullable: true }) status?: ContainerStatus[] | null;
  @Field(() => Boolean, {
    nullable: true,
    description: 'Only containers whose desired status the runtime has not reached yet',
  })
  pendingAction?: boolean | null;
}

// ---------- MCP servers ----------

@InputType()
export class McpEnvVarInput {
  @Field()
  @Matches(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, {
    message: 'environment variable names are letters, digits and _, not starting with a digit',
  })
  name!: string;
  @Field(() => String, { nullable: true, description: 'Null on a secret in updateMcpServer: keep its current value' })
  @MaxLength(10_000)
  value?: string | null;
  @Field(() => Boolean, {
    nullable: true,
    description: 'Encrypted at rest and never shown again (only its last four characters)',
  })
  secret?: boolean | null;
}

@InputType({ description: 'A request header sent to a remote MCP server, e.g. Authorization' })
export class McpHeaderInput {
  @Field()
  @Matches(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$/, {
    message: 'header names are 1-128 token characters (letters, digits, -, _, …)',
  })
  name!: string;
  @Field(() => String, { nullable: true, description: 'Null on a secret in updateMcpServer: keep its current value' })
  @MaxLength(10_000)
  value?: string | null;
  @Field(() => Boolean, {
    nullable: true,
    description: 'Encrypted at rest and never shown again (only its last four characters)',
  })
  secret?: boolean | null;
}

const MCP_URL = { require_tld: false, require_protocol: true, protocols: ['http', 'https'] };

@InputType({ description: 'A local server has a command; a remote one a url (Streamable HTTP)' })
export class RegisterMcpServerInput {
  @Field() @Length(1, 100) name!: string;
  @Field() @Length(1, 50) serverType!: string;
  @Field(() => String, { nullable: true }) @Length(1, 2000) command?: string | null;
  @Field(() => String, { nullable: true }) @IsUrl(MCP_URL) @MaxLength(2000) url?: string | null;
  @Field(() => [McpHeaderInput], { nullable: true }) @ArrayMaxSize(50) @ValidateNested({ each: true }) headers?:
    McpHeaderInput[] | null;
  @Field(() => [String], { nullable: true }) @ArrayMaxSize(100) @MaxLength(2000, { each: true }) args?: string[] | null;
  @Field(() => [McpEnvVarInput], { nullable: true }) @ArrayMaxSize(100) @ValidateNested({ each: true }) environment?:
    McpEnvVarInput[] | null;
  @Field(() => [String], { nullable: true }) @ArrayMaxSize(200) @MaxLength(200, { each: true }) capabilities?:
    string[] | null;
  @Field(() => Boolean, { nullable: true, description: 'Default true' }) isActive?: boolean | null;
}

@InputType()
export class UpdateMcpServerInput {
  @Field(() => ID) @IsUUID() id!: string;
  @Field(() => String, { nullable: true }) @Length(1, 100) name?: string | null;
  @Field(() => String, { nullable: true }) @Length(1, 50) serverType?: string | null;
  @Field(() => String, { nullable: true }) @Length(1, 2000) command?: string | null;
  @Field(() => String, { nullable: true }) @IsUrl(MCP_URL) @MaxLength(2000) url?: string | null;
  @Field(() => [McpHeaderInput], { nullable: true, description: 'Replaces all the headers' })
  @ArrayMaxSize(50)
  @ValidateNested({ each: true })
  headers?: McpHeaderInput[] | null;
  @Field(() => [String], { nullable: true }) @ArrayMaxSize(100) @MaxLength(2000, { each: true }) args?: string[] | null;
  @Field(() => [McpEnvVarInput], { nullable: true, description: 'Replaces the whole environment' })
  @ArrayMaxSize(100)
  @ValidateNested({ each: true })
  environment?: McpEnvVarInput[] | null;
  @Field(() => [String], { nullable: true }) @ArrayMaxSize(200) @MaxLength(200, { each: true }) capabilities?:
    string[] | null;
  @Field(() => Boolean, { nullable: true }) isActive?: boolean | null;
}

@InputType()
export class McpServerHeartbeatInput {
  @Field(() => ID) @IsUUID() id!: string;
  @Field(() => Boolean, { nullable: true, description: 'False reports a failure (status ERROR); default true' }) ok?:
    boolean | null;
  @Field(() => String, { nullable: true }) @MaxLength(2000) error?: string | null;
  @Field(() => [String], { nullable: true, description: 'What the server offers now (replaces the list)' })
  @ArrayMaxSize(200)
  @MaxLength(200, { each: true })
  capabilities?: string[] | null;
}

@InputType()
export class McpServerWhere {
  @Field(() => [McpServerStatus], { nullable: true }) status?: McpServerStatus[] | null;
  @Field(() => Boolean, { nullable: true }) isActive?: boolean | null;
  @Field(() => String, { nullable: true }) @MaxLength(50) serverType?: string | null;
}

// ---------- watchers ----------

@InputType()
export class CreateWatcherInput {
  @Field() @Length(1, 100) name!: string;
  @Field() @Length(1, 50) watcherType!: string;
  @Field(() => GraphQLJSONObject, { nullable: true }) config?: Record<string, unknown> | null;
  @Field(() => Boolean, { nullable: true, description: 'Default true' }) isActive?: boolean | null;
}

@InputType()
export class UpdateWatcherInput {
  @Field(() => ID) @IsUUID() id!: string;
  @Field(() => String, { nullable: true }) @Length(1, 100) name?: string | null;
  @Field(() => GraphQLJSONObject, { nullable: true, description: 'Replaces the config' }) config?: Record<
    string,
    unknown
  > | null;
  @Field(() => Boolean, { nullable: true }) isActive?: boolean | null;
}

@InputType()
export class ReportWatcherRunInput {
  @Field(() => ID) @IsUUID() watcherId!: string;
  @Field() ok!: boolean;
  @Field(() => String, { nullable: true }) @MaxLength(5000) error?: string | null;
  @Field(() => Int, { nullable: true }) @IsInt() @Min(0) itemsProcessed?: number | null;
  @Field(() => Int, { nullable: true }) @IsInt() @Min(0) @Max(7 * 24 * 3600_000) durationMs?: number | null;
  @Field(() => GraphQLJSON, { nullable: true }) details?: unknown;
}

@InputType()
export class WatcherWhere {
  @Field(() => Boolean, { nullable: true }) isActive?: boolean | null;
  @Field(() => String, { nullable: true }) @MaxLength(50) watcherType?: string | null;
  @Field(() => Boolean, { nullable: true, description: 'Only watchers whose last run failed' }) failing?:
    boolean | null;
}
