import 'reflect-metadata';

import type { EntityManager } from '@mikro-orm/postgresql';

import { loadConfig } from '../config.js';
import { Role } from '../modules/identity/user.entity.js';
import type { Services } from '../modules/services.js';
import { startApp } from '../server/app.js';
import { createLogger } from '../shared/logger.js';

/**
 * `npm run seed:demo`: a demo organisation on DATABASE_URL (or the embedded database),
 * created through the GraphQL API itself so it obeys every rule clients do. Idempotent:
 * it stops if the demo admin already exists. Prints who can sign in, and the password.
 */
const PASSWORD = 'steward-demo-password';
const DOMAIN = 'demo.steward.dev';

const PEOPLE = [
  { username: 'dana', name: 'Dana Admin', role: Role.ADMIN },
  { username: 'alice', name: 'Alice Product', role: Role.USER },
  { username: 'bob', name: 'Bob Engineer', role: Role.USER },
  { username: 'carol', name: 'Carol Analyst', role: Role.USER },
  { username: 'oscar', name: 'Oscar Observer', role: Role.OBSERVER },
] as const;

type Call = (query: string, variables?: Record<string, unknown>, token?: string) => Promise<any>;
/** Each demo person's access token and user id, by username. */
type People = Record<(typeof PEOPLE)[number]['username'], { token: string; id: string }>;

async function main() {
  const config = loadConfig({
    ...process.env,
    PORT: '0',
    JOBS_ENABLED: 'false',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  });
  const app = await startApp(config, { logger: createLogger(config.LOG_LEVEL) });
  const url = `${app.url}/graphql`;
  const call: Call = async (query, variables = {}, token) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as { data?: any; errors?: { message: string }[] };
    if (body.errors?.length) throw new Error(body.errors.map((e) => e.message).join('; '));
    return body.data;
  };

  try {
    const { services, orm } = app.runtime;
    const em = orm.em.fork() as EntityManager;
    const [{ n }] = await em.execute<{ n: number }[]>(`SELECT count(*)::int AS n FROM users WHERE email = ?`, [
      `dana@${DOMAIN}`,
    ]);
    if (n > 0) {
      console.log(
        `The demo organisation is already there. Sign in as dana, alice, bob, carol or oscar with the password: ${PASSWORD}`,
      );
      return;
    }
    const people = await signUpPeople(services, em, call);
    const { checkout, evals } = await createProjects(call, people);
    const { build } = await createTasks(call, people, checkout, evals);
    await requestApprovals(call, people, checkout, build);

    console.log(`Demo organisation ready on ${config.DATABASE_URL ? 'DATABASE_URL' : 'the embedded database'}.`);
    console.log(`Sign in (login = username or e-mail) with the password: ${PASSWORD}`);
    for (const p of PEOPLE) console.log(`  ${p.username.padEnd(6)} ${`${p.username}@${DOMAIN}`.padEnd(24)} ${p.role}`);
  } finally {
    await app.close();
  }
}

/** Everyone in PEOPLE, signed up with an invitation of their role. */
async function signUpPeople(services: Services, em: EntityManager, call: Call): Promise<People> {
  // Invitations made directly by the service (there may be no admin yet to make them through the API).
  const scope = { em, viewer: null, meta: { requestId: 'seed-demo', ip: null, userAgent: 'seed:demo' } };
  const tokens = {} as People;
  for (const p of PEOPLE) {
    const { code } = await services.credentials.createInvitation(scope, {
      role: p.role,
      maxUses: 1,
      expiresAt: new Date(Date.now() + 3600_000),
      email: `${p.username}@${DOMAIN}`,
    });
    const r = await call(`mutation($input: SignUpInput!) { signUp(input: $input) { accessToken user { id } } }`, {
      input: {
        email: `${p.username}@${DOMAIN}`,
        username: p.username,
        name: p.name,
        password: PASSWORD,
        invitationCode: code,
      },
    });
    tokens[p.username] = { token: r.signUp.accessToken, id: r.signUp.user.id };
  }
  return tokens;
}

/** Alice's checkout project (Bob maintains it, Carol contributes, Oscar watches) and Bob's evaluation project. */
async function createProjects(call: Call, tokens: People): Promise<{ checkout: string; evals: string }> {
  const as = (who: keyof People) => tokens[who].token;
  const createProject = `mutation($input: CreateProjectInput!) { createProject(input: $input) { id } }`;
  const checkout = (
    await call(
      createProject,
      {
        input: {
          name: 'Checkout revamp',
          description: 'New checkout flow with AI-assisted fraud review',
          templateKey: 'react-typescript',
        },
      },
      as('alice'),
    )
  ).createProject.id;
  const evals = (
    await call(
      createProject,
      {
        input: {
          name: 'Model evaluation',
          description: 'Weekly evaluation of the support assistant',
          templateKey: 'python-fastapi',
        },
      },
      as('bob'),
    )
  ).createProject.id;

  const addMember = `mutation($input: AddProjectMemberInput!) { addProjectMember(input: $input) { role } }`;
  await call(addMember, { input: { projectId: checkout, userId: tokens.bob.id, role: 'MAINTAINER' } }, as('alice'));
  await call(addMember, { input: { projectId: checkout, userId: tokens.carol.id, role: 'CONTRIBUTOR' } }, as('alice'));
  await call(addMember, { input: { projectId: checkout, userId: tokens.oscar.id, role: 'VIEWER' } }, as('alice'));
  await call(addMember, { input: { projectId: evals, userId: tokens.carol.id, role: 'CONTRIBUTOR' } }, as('bob'));

  return { checkout, evals };
}

/** Four tasks (one depending on another, one overdue), assigned, one of them started. */
async function createTasks(call: Call, tokens: People, checkout: string, evals: string): Promise<{ build: string }> {
  const as = (who: keyof People) => tokens[who].token;
  const createTask = `mutation($input: CreateTaskInput!) { createTask(input: $input) { id } }`;
  const day = 24 * 3600_000;
  const design = (
    await call(
      createTask,
      {
        input: {
          projectId: checkout,
          title: 'Design the payment step',
          description: 'Wireframes and copy for the new payment step',
          priority: 'HIGH',
          tags: ['design'],
          dueDate: new Date(Date.now() + 2 * day).toISOString(),
          allowedIntents: ['design', 'documentation'],
        },
      },
      as('alice'),
    )
  ).createTask.id;
  const build = (
    await call(
      createTask,
      {
        input: {
          projectId: checkout,
          title: 'Build the payment form',
          description: 'React form with card validation and 3-D Secure',
          priority: 'CRITICAL',
          estimatedMinutes: 960,
          tags: ['frontend'],
          dependsOn: [design],
          dueDate: new Date(Date.now() + 5 * day).toISOString(),
          allowedIntents: ['coding', 'testing', 'debugging'],
        },
      },
      as('alice'),
    )
  ).createTask.id;
  const fraud = (
    await call(
      createTask,
      {
        input: {
          projectId: checkout,
          title: 'Fraud rules review',
          description: 'Review the rules the fraud model flags',
          priority: 'MEDIUM',
          tags: ['risk'],
          dueDate: new Date(Date.now() - day).toISOString(),
        },
      },
      as('bob'),
    )
  ).createTask.id;
  await call(
    createTask,
    {
      input: {
        projectId: evals,
        title: 'Evaluate the new support model',
        description: 'Run the evaluation dataset against the candidate model',
        priority: 'HIGH',
        tags: ['evaluation'],
      },
    },
    as('bob'),
  );

  const assign = `mutation($input: AssignTaskInput!) { assignTask(input: $input) { id } }`;
  await call(assign, { input: { taskId: design, userId: tokens.carol.id } }, as('alice'));
  await call(assign, { input: { taskId: build, userId: tokens.bob.id } }, as('alice'));
  await call(assign, { input: { taskId: fraud, userId: tokens.carol.id } }, as('bob'));
  await call(
    `mutation($input: UpdateTaskStatusInput!) { updateTaskStatus(input: $input) { id } }`,
    { input: { taskId: design, status: 'IN_PROGRESS' } },
    as('carol'),
  );

  return { build };
}

/** Two approvals waiting for Bob, the checkout project's maintainer. */
async function requestApprovals(call: Call, tokens: People, checkout: string, build: string): Promise<void> {
  const as = (who: keyof People) => tokens[who].token;
  const request = `mutation($input: RequestApprovalInput!) { requestApproval(input: $input) { id } }`;
  await call(
    request,
    { input: { taskId: build, actionType: 'deploy_preview', details: { environment: 'staging' } } },
    as('carol'),
  );
  await call(
    request,
    {
      input: {
        projectId: checkout,
        actionType: 'enable_fraud_model',
        details: { model: 'fraud-v3', threshold: 0.82 },
      },
    },
    as('carol'),
  );
}

main().catch((err) => {
  console.error('seed:demo failed:', err instanceof Error ? err.message : err);
  process.exit(1);
});
