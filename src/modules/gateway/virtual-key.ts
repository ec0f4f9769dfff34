import { ArrayMaxSize, IsOptional, Length, Max, Min } from 'class-validator';
import { Arg, Ctx, Field, ID, InputType, Int, Mutation, ObjectType, Resolver } from 'type-graphql';
import { viewerOf, type Context } from '../../server/context.js';
import { Allow } from '../../shared/allow.js';
import { DecimalScalar } from '../../shared/decimal.scalar.js';
import { BadInputError, requireUuid } from '../../shared/errors.js';
import { inTransaction, type Scope, type Viewer } from '../../shared/scope.js';
import { formatMicros, toMicros } from '../billing/index.js';
import { textArray } from './virtual-key.service.js';

@InputType()
export class CreateVirtualKeyInput {
  @Field() @Length(1, 100) name!: string;
  @Field(() => Date, { nullable: true, description: 'After this the key stops working' }) expiresAt?: Date | null;
  @Field(() => [String], {
    nullable: true,
    description: 'Models the key may call (as /v1/models names them); null: every model you may use',
  })
  @IsOptional()
  @ArrayMaxSize(100)
  @Length(1, 256, { each: true })
  allowedModels?: string[] | null;
  @Field(() => ID, {
    nullable: true,
    description: 'The task that governs every call of the key (you must contribute to it)',
  })
  taskId?: string | null;
  @Field(() => ID, {
    nullable: true,
    description: "The project the key's calls are attributed to (you must contribute to it)",
  })
  projectId?: string | null;
  @Field(() => DecimalScalar, { nullable: true }) dailyCostLimitUsd?: string | null;
  @Field(() => DecimalScalar, { nullable: true }) monthlyCostLimitUsd?: string | null;
  @Field(() => Int, { nullable: true }) @IsOptional() @Min(1) @Max(1_000_000_000) dailyTokenLimit?: number | null;
  @Field(() => Int, { nullable: true }) @IsOptional() @Min(1) @Max(1_000_000) requestsPerMinute?: number | null;
}

@ObjectType({ description: "An API token as a gateway key: its rules (the user's own limits always apply too)" })
export class VirtualKey {
  @Field(() => ID) id!: string;
  @Field() name!: string;
  @Field() prefix!: string;
  @Field(() => [String], { nullable: true }) allowedModels!: string[] | null;
  @Field(() => ID, { nullable: true }) taskId!: string | null;
  @Field(() => ID, { nullable: true }) projectId!: string | null;
  @Field(() => DecimalScalar, { nullable: true }) dailyCostLimitUsd!: string | null;
  @Field(() => DecimalScalar, { nullable: true }) monthlyCostLimitUsd!: string | null;
  @Field(() => Int, { nullable: true }) dailyTokenLimit!: number | null;
  @Field(() => Int, { nullable: true }) requestsPerMinute!: number | null;
  @Field(() => Date, { nullable: true }) expiresAt!: Date | null;
  @Field(() => ID, { description: 'The user the key acts as' }) userId!: string;
  @Field(() => Date, { nullable: true }) revokedAt!: Date | null;
  @Field(() => Date, { nullable: true }) lastUsedAt!: Date | null;
  @Field(() => Date) createdAt!: Date;
}

@ObjectType()
export class CreatedVirtualKey {
  @Field({ description: 'Shown once; only its hash is stored' }) token!: string;
  @Field(() => VirtualKey) key!: VirtualKey;
}

@InputType()
export class SetProjectBudgetInput {
  @Field(() => ID) projectId!: string;
  @Field(() => DecimalScalar, { nullable: true, description: 'null: no daily limit' }) dailyCostLimitUsd?:
    string | null;
  @Field(() => DecimalScalar, { nullable: true, description: 'null: no monthly limit' }) monthlyCostLimitUsd?:
    string | null;
}

@ObjectType()
export class ProjectBudget {
  @Field(() => ID) projectId!: string;
  @Field(() => DecimalScalar, { nullable: true }) dailyCostLimitUsd!: string | null;
  @Field(() => DecimalScalar, { nullable: true }) monthlyCostLimitUsd!: string | null;
}

const money = (v: string | null | undefined, field: string) => (v == null ? null : formatMicros(toMicros(v, field)));

async function createVirtualKey(
  ctx: Context,
  viewer: Viewer,
  input: CreateVirtualKeyInput,
): Promise<CreatedVirtualKey> {
  const s = ctx.services;
  const { taskId, projectId } = await s.virtualKeys.binding(viewer, input.taskId ?? null, input.projectId ?? null);
  const limits = {
    allowedModels: input.allowedModels?.map((m) => m.trim()).filter(Boolean) ?? null,
    daily: money(input.dailyCostLimitUsd, 'dailyCostLimitUsd'),
    monthly: money(input.monthlyCostLimitUsd, 'monthlyCostLimitUsd'),
  };
  return inTransaction(ctx as Scope, async (tx) => {
    const { token, apiToken } = await s.credentials.createApiToken(tx, viewer, {
      name: input.name,
      expiresAt: input.expiresAt ?? null,
    });
    await tx.em.execute(
      `UPDATE api_tokens SET allowed_models = ?, bound_task_id = ?, bound_project_id = ?, daily_cost_limit_usd = ?::numeric, monthly_cost_limit_usd = ?::numeric, daily_token_limit = ?, requests_per_minute = ? WHERE id = ?`,
      [
        textArray(limits.allowedModels),
        taskId,
        projectId,
        limits.daily,
        limits.monthly,
        input.dailyTokenLimit ?? null,
        input.requestsPerMinute ?? null,
        apiToken.id,
      ],
    );
    const key: VirtualKey = {
      id: apiToken.id,
      name: apiToken.name,
      prefix: apiToken.prefix,
      allowedModels: limits.allowedModels,
      taskId,
      projectId,
      dailyCostLimitUsd: limits.daily,
      monthlyCostLimitUsd: limits.monthly,
      dailyTokenLimit: input.dailyTokenLimit ?? null,
      requestsPerMinute: input.requestsPerMinute ?? null,
      expiresAt: apiToken.expiresAt ?? null,
      userId: viewer.userId,
      revokedAt: null,
      lastUsedAt: null,
      createdAt: apiToken.createdAt,
    };
    s.audit.record(tx, {
      action: 'apiToken.virtualKey',
      entityType: 'ApiToken',
      entityId: apiToken.id,
      after: {
        ...key,
        id: undefined,
        userId: undefined,
        revokedAt: undefined,
        lastUsedAt: undefined,
        createdAt: undefined,
      },
    });
    return { token, key };
  });
}

@Resolver()
@Allow('SIGNED_IN')
export class VirtualKeyResolver {
  @Allow('OWN_ACCOUNT')
  @Mutation(() => CreatedVirtualKey, {
    description:
      'An API token for the AI gateway with its own rules: models, task or project binding, budget, expiry. The token is shown once.',
  })
  createVirtualKey(@Arg('input') input: CreateVirtualKeyInput, @Ctx() ctx: Context) {
    return createVirtualKey(ctx, viewerOf(ctx), input);
  }

  @Allow('ADMIN')
  @Mutation(() => ProjectBudget, {
    description:
      "A project's AI cost limits (null clears one): every call attributed to the project counts, whoever makes it.",
  })
  async setProjectBudget(@Arg('input') input: SetProjectBudgetInput, @Ctx() ctx: Context) {
    const projectId = requireUuid(input.projectId, 'projectId');
    const values = [
      money(input.dailyCostLimitUsd, 'dailyCostLimitUsd'),
      money(input.monthlyCostLimitUsd, 'monthlyCostLimitUsd'),
    ];
    return inTransaction(ctx as Scope, async (tx) => {
      const [exists] = await tx.em.execute(`SELECT 1 FROM projects WHERE id = ?`, [projectId]);
      if (!exists) throw new BadInputError('projectId: no such project', { field: 'projectId' });
      const [row] = await tx.em.execute<
        { projectId: string; dailyCostLimitUsd: string | null; monthlyCostLimitUsd: string | null }[]
      >(
        `INSERT INTO project_budgets (project_id, daily_cost_limit_usd, monthly_cost_limit_usd) VALUES (?, ?::numeric, ?::numeric)
         ON CONFLICT (project_id) DO UPDATE SET daily_cost_limit_usd = EXCLUDED.daily_cost_limit_usd, monthly_cost_limit_usd = EXCLUDED.monthly_cost_limit_usd, updated_at = now()
         RETURNING project_id AS "projectId", daily_cost_limit_usd::text AS "dailyCostLimitUsd", monthly_cost_limit_usd::text AS "monthlyCostLimitUsd"`,
        [projectId, ...values],
      );
      ctx.services.audit.record(tx, {
        action: 'project.budget',
        entityType: 'Project',
        entityId: projectId,
        after: row,
      });
      return row;
    });
  }
}
