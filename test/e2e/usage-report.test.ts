import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';

import { canonicalize } from '../../src/modules/audit/canonical.js';
import { classifyIntent } from '../../src/shared/intent-classifier.js';
import { codes, gql, ok, subscribe, wsClient } from '../support/client.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';
import { team } from '../support/projects.js';
import { sentinel } from '../support/sentinel.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, type TestUser } from '../support/users.js';
import { busListeners } from '../support/wait.js';

/**
 * usageReport and the exports over calls made through the API (sendMessage against a
 * local OpenAI-compatible server that says how many tokens it counted): rows and totals
 * are checked against what that server served and reported, never against Steward's
 * own tables.
 */
let s: TestServer;
let fake: FakeOpenAI;
let admin: TestUser;
let providerId: string;
let t: Awaited<ReturnType<typeof team>>;
let owner: TestUser, maintainer: TestUser, member: TestUser, stranger: TestUser, idle: TestUser;
let tokenId: string;
const MODEL = 'gpt-report-test';

const CREATE_PROVIDER = `mutation($input: CreateProviderInput!) { createProvider(input: $input) { id } }`;
const START = `mutation($input: StartConversationInput!) { startConversation(input: $input) { id } }`;
const SEND = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { id } }`;
const SET_QUOTA = `mutation($input: SetUserQuotaInput!) { setUserQuota(input: $input) { requestsPerHour } }`;
const CREATE_TOKEN = `mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { token apiToken { id name } } }`;
const REPORT = `query($groupBy: [UsageDimension!]!, $where: UsageReportWhere, $first: Int, $after: String) {
  usageReport(groupBy: $groupBy, where: $where, first: $first, after: $after) {
    rows { day week month user { id username } project { id name } task { id title } agentType model provider { id name } intent apiToken { id name } status
           requests inputTokens outputTokens costUsd blocked errors }
    totals { requests inputTokens outputTokens costUsd blocked errors }
    totalCount pageInfo { hasNextPage endCursor }
  }
}`;

/** What the provider reported per answered call (scripted: the fake says exactly these counts). */
const ANSWERS = {
  memberFirst: { prompt_tokens: 1000, completion_tokens: 500 }, // 0.002 + 0.002
  memberSecond: { prompt_tokens: 2000, completion_tokens: 250 }, // 0.004 + 0.001
  maintainer: { prompt_tokens: 500, completion_tokens: 500 }, // 0.001 + 0.002
  stranger: { prompt_tokens: 3000, completion_tokens: 1000 }, // 0.006 + 0.004
};
// $ per 1k tokens; every count above is a multiple of 250, so costs are exact micro-dollars.
const IN_PRICE = 0.002;
const OUT_PRICE = 0.004;
const dollars = (u: { prompt_tokens: number; completion_tokens: number }[]) =>
  (
    u.reduce((n, x) => n + x.prompt_tokens * IN_PRICE * 1000 + x.completion_tokens * OUT_PRICE * 1000, 0) / 1_000_000
  ).toFixed(6);

const PROMPTS = {
  code: 'Implement the function that parses the config file',
  debug: 'Debug the failing login test',
  docs: 'Write the documentation for the API',
};

async function report(
  token: string,
  groupBy: string[],
  where?: Record<string, unknown>,
  page: { first?: number; after?: string } = {},
) {
  return (await ok(s.url, REPORT, { groupBy, where, ...page }, token)).usageReport;
}

async function send(u: TestUser | string, conversationId: string, content: string) {
  return gql(s.url, SEND, { input: { conversationId, content } }, typeof u === 'string' ? u : u.token);
}

beforeAll(async () => {
  fake = await startFakeOpenAI();
  s = await startTestServer({ env: { AI_PROVIDER_FALLBACK: 'false' } });
  admin = await firstAdmin(s);
  providerId = (
    await ok(
      s.url,
      CREATE_PROVIDER,
      {
        input: {
          name: 'fake-openai',
          providerType: 'OPENAI',
          modelName: MODEL,
          apiEndpoint: fake.baseURL,
          apiKey: 'sk-platform',
          inputCostPer1k: '0.002000',
          outputCostPer1k: '0.004000',
          maxTokens: 1000,
          timeoutSeconds: 5,
        },
      },
      admin.token,
    )
  ).createProvider.id;
  t = await team(s, admin, ['MAINTAINER', 'CONTRIBUTOR'], 'Ship the parser');
  // A call may be bound only to a task its user is assigned to (prompt governance).
  for (const u of [t.owner, ...t.members])
    await ok(
      s.url,
      `mutation($i: AssignTaskInput!) { assignTask(input: $i) { id } }`,
      { i: { taskId: t.task.id, userId: u.id } },
      admin.token,
    );
  owner = t.owner;
  [maintainer, member] = t.members as [TestUser, TestUser];
  stranger = await createUser(s, admin);
  idle = await createUser(s, admin);

  // The member: two answered calls on the task, then one the provider fails.
  const onTask = (await ok(s.url, START, { input: { providerId, taskId: t.task.id } }, member.token)).startConversation
    .id;
  fake.script({ usage: ANSWERS.memberFirst }, { usage: ANSWERS.memberSecond }, { status: 500 });
  expect(codes(await send(member, onTask, PROMPTS.code))).toEqual([]);
  expect(codes(await send(member, onTask, PROMPTS.debug))).toEqual([]);
  expect(codes(await send(member, onTask, PROMPTS.code))).toEqual(['PROVIDER_UNAVAILABLE']);
  // The maintainer: one answered call in the project, no task.
  const inProject = (await ok(s.url, START, { input: { providerId, projectId: t.project.id } }, maintainer.token))
    .startConversation.id;
  fake.script({ usage: ANSWERS.maintainer });
  expect(codes(await send(maintainer, inProject, PROMPTS.docs))).toEqual([]);
  // The stranger, outside the project, with an API token: one answered call, then one refused by its hourly limit.
  const created = (await ok(s.url, CREATE_TOKEN, { input: { name: 'report-script' } }, stranger.token)).createApiToken;
  tokenId = created.apiToken.id;
  const alone = (await ok(s.url, START, { input: { providerId } }, created.token)).startConversation.id;
  fake.script({ usage: ANSWERS.stranger });
  expect(codes(await send(created.token, alone, PROMPTS.docs))).toEqual([]);
  await ok(s.url, SET_QUOTA, { input: { userId: stranger.id, requestsPerHour: 1 } }, admin.token);
  expect(codes(await send(created.token, alone, PROMPTS.docs))).not.toEqual([]);
}, 60_000);

afterAll(async () => {
  await s?.close();
  await fake?.close();
});

const today = () => new Date().toISOString().slice(0, 10);
function mondayOf(day: string) {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() + 6) % 7));
  return d.toISOString().slice(0, 10);
}

describe('usageReport', () => {
  it('totals what the provider served and counted; blocked and failed calls are counted, never charged', async () => {
    const r = await report(admin.token, ['USER']);
    const served = Object.values(ANSWERS);
    // The provider saw every call but the blocked one: four answered, one failed.
    expect(fake.completions.length).toBe(5);
    expect(r.totals).toEqual({
      requests: 6,
      inputTokens: served.reduce((n, u) => n + u.prompt_tokens, 0),
      outputTokens: served.reduce((n, u) => n + u.completion_tokens, 0),
      costUsd: dollars(served),
      blocked: 1,
      errors: 1,
    });
    expect(r.totals.requests - r.totals.blocked).toBe(fake.completions.length);
    const byUser = Object.fromEntries(r.rows.map((row: any) => [row.user.username, row]));
    expect(byUser[member.username]).toMatchObject({
      requests: 3,
      errors: 1,
      blocked: 0,
      inputTokens: 3000,
      outputTokens: 750,
      costUsd: dollars([ANSWERS.memberFirst, ANSWERS.memberSecond]),
    });
    expect(byUser[maintainer.username]).toMatchObject({ requests: 1, costUsd: dollars([ANSWERS.maintainer]) });
    expect(byUser[stranger.username]).toMatchObject({
      requests: 2,
      blocked: 1,
      errors: 0,
      costUsd: dollars([ANSWERS.stranger]),
    });
    // Most expensive first; the ungrouped dimensions are null.
    expect(r.rows.map((row: any) => row.user.username)).toEqual([
      stranger.username,
      member.username,
      maintainer.username,
    ]);
    expect(r.rows[0]).toMatchObject({ day: null, model: null, project: null, status: null });
    expect(r.totalCount).toBe(3);
  });

  it("shows admins everything, a project's owner and maintainers its calls, everyone else their own", async () => {
    const users = async (u: TestUser) => {
      const r = await report(u.token, ['USER']);
      return { users: r.rows.map((row: any) => row.user.id).sort(), requests: r.totals.requests };
    };
    const sorted = (...ids: string[]) => ids.sort();
    expect(await users(admin)).toEqual({ users: sorted(member.id, maintainer.id, stranger.id), requests: 6 });
    expect(await users(owner)).toEqual({ users: sorted(member.id, maintainer.id), requests: 4 });
    expect(await users(maintainer)).toEqual({ users: sorted(member.id, maintainer.id), requests: 4 });
    expect(await users(member)).toEqual({ users: [member.id], requests: 3 });
    expect(await users(stranger)).toEqual({ users: [stranger.id], requests: 2 });
    expect(await users(idle)).toEqual({ users: [], requests: 0 });
    // Filters narrow what one may see, never widen it.
    const asked = await report(member.token, ['USER'], { userId: stranger.id });
    expect(asked.rows).toEqual([]);
    expect(asked.totals).toMatchObject({ requests: 0, costUsd: '0.000000' });
    expect((await report(stranger.token, ['PROJECT'], { projectId: t.project.id })).totals.requests).toBe(0);
  });

  it('groups by every dimension', async () => {
    const day = today();
    const [d] = (await report(admin.token, ['DAY'])).rows;
    expect(d).toMatchObject({ day, requests: 6 });
    expect((await report(admin.token, ['WEEK'])).rows).toMatchObject([{ week: mondayOf(day), requests: 6 }]);
    expect((await report(admin.token, ['MONTH'])).rows).toMatchObject([
      { month: `${day.slice(0, 7)}-01`, requests: 6 },
    ]);

    const projects = (await report(admin.token, ['PROJECT'])).rows;
    // Most expensive first: the project's $0.012, then the calls outside any project ($0.010).
    expect(projects.map((r: any) => [r.project?.name ?? null, r.requests])).toEqual([
      [t.project.name, 4],
      [null, 2],
    ]);
    const tasks = (await report(admin.token, ['TASK'])).rows;
    expect(tasks.map((r: any) => [r.task?.title ?? null, r.requests, r.errors, r.costUsd])).toEqual([
      [null, 3, 0, dollars([ANSWERS.maintainer, ANSWERS.stranger])],
      ['Ship the parser', 3, 1, dollars([ANSWERS.memberFirst, ANSWERS.memberSecond])],
    ]);
    expect((await report(admin.token, ['AGENT'])).rows).toMatchObject([{ agentType: 'ASSISTANT', requests: 6 }]);
    // The call refused by its hourly limit was refused for that provider's model: it counts there, as blocked.
    const models = (await report(admin.token, ['MODEL'])).rows;
    expect(models.map((r: any) => [r.model, r.requests, r.blocked])).toEqual([[MODEL, 6, 1]]);
    expect(fake.completions.every((c) => c.body.model === MODEL)).toBe(true);
    const providers = (await report(admin.token, ['PROVIDER'])).rows;
    expect(providers.map((r: any) => [r.provider?.name ?? null, r.requests])).toEqual([['fake-openai', 6]]);
    const intents = (await report(admin.token, ['INTENT'])).rows;
    const expected = new Map<string, number>();
    for (const p of [PROMPTS.code, PROMPTS.debug, PROMPTS.code, PROMPTS.docs, PROMPTS.docs, PROMPTS.docs]) {
      const i = classifyIntent(p).intent;
      expected.set(i, (expected.get(i) ?? 0) + 1);
    }
    expect(Object.fromEntries(intents.map((r: any) => [r.intent, r.requests]))).toEqual(Object.fromEntries(expected));
    const tokens = (await report(admin.token, ['API_TOKEN'])).rows;
    expect(tokens.map((r: any) => [r.apiToken?.name ?? null, r.requests, r.blocked])).toEqual([
      [null, 4, 0],
      ['report-script', 2, 1],
    ]);
    expect((await report(stranger.token, ['API_TOKEN'], { apiTokenId: tokenId })).rows).toMatchObject([
      { apiToken: { id: tokenId }, requests: 2 },
    ]);
    const statuses = (await report(admin.token, ['STATUS'])).rows;
    expect(
      Object.fromEntries(statuses.map((r: any) => [r.status, [r.requests, r.blocked, r.errors, r.costUsd]])),
    ).toEqual({
      SUCCESS: [4, 0, 0, dollars(Object.values(ANSWERS))],
      BLOCKED: [1, 1, 0, '0.000000'],
      ERROR: [1, 0, 1, '0.000000'],
    });
  });

  it('combines dimensions, filters by time and attribute, and pages through groups', async () => {
    const dm = await report(admin.token, ['DAY', 'MODEL']);
    expect(dm.rows.map((r: any) => [r.day, r.model, r.requests, r.costUsd])).toEqual([
      [today(), MODEL, 6, dollars(Object.values(ANSWERS))],
    ]);
    const all = await report(admin.token, ['USER', 'STATUS']);
    expect(all.totalCount).toBe(5);
    const first = await report(admin.token, ['USER', 'STATUS'], undefined, { first: 2 });
    expect(first.pageInfo.hasNextPage).toBe(true);
    expect(first.totals).toEqual(all.totals);
    const second = await report(admin.token, ['USER', 'STATUS'], undefined, {
      first: 2,
      after: first.pageInfo.endCursor,
    });
    const third = await report(admin.token, ['USER', 'STATUS'], undefined, {
      first: 2,
      after: second.pageInfo.endCursor,
    });
    expect(third.pageInfo.hasNextPage).toBe(false);
    expect([...first.rows, ...second.rows, ...third.rows]).toEqual(all.rows);

    const later = new Date(Date.now() + 3600_000).toISOString();
    expect((await report(admin.token, ['DAY'], { from: later })).totals.requests).toBe(0);
    expect(
      (await report(admin.token, ['DAY'], { to: later, from: new Date(Date.now() - 3600_000).toISOString() })).totals
        .requests,
    ).toBe(6);
    expect((await report(admin.token, ['USER'], { taskId: t.task.id })).totals).toMatchObject({
      requests: 3,
      errors: 1,
    });
    expect((await report(admin.token, ['USER'], { model: MODEL, providerId })).totals.requests).toBe(6);
    expect((await report(admin.token, ['USER'], { model: 'another-model' })).totals.requests).toBe(0);
    expect((await report(admin.token, ['USER'], { projectId: t.project.id })).totals.requests).toBe(4);
  });

  it("counts the same from the organisation's daily rollup as from the logs: whole days, partial days, before and after folding", async () => {
    const byLogs = async (where?: Record<string, unknown>) => {
      // USER is not rolled up: this report is counted from the prompt logs.
      const rows = (await report(admin.token, ['DAY', 'MODEL', 'USER'], where)).rows as any[];
      const sums = new Map<string, number[]>();
      for (const r of rows) {
        const k = `${r.day} ${r.model}`;
        const [n = 0, c = 0, b = 0] = sums.get(k) ?? [];
        sums.set(k, [n + r.requests, c + Math.round(Number(r.costUsd) * 1e6), b + r.blocked]);
      }
      return [...sums.entries()].sort();
    };
    const byRollup = async (where?: Record<string, unknown>) =>
      ((await report(admin.token, ['DAY', 'MODEL'], where)).rows as any[])
        .map((r) => [`${r.day} ${r.model}`, [r.requests, Math.round(Number(r.costUsd) * 1e6), r.blocked]])
        .sort();
    const midnight = `${today()}T00:00:00.000Z`;
    const ranges = [
      undefined,
      { from: midnight },
      { from: new Date(Date.now() - 3600_000).toISOString() },
      { from: midnight, to: new Date(Date.now() + 60_000).toISOString() },
    ];
    for (const where of ranges) expect(await byRollup(where), JSON.stringify(where)).toEqual(await byLogs(where));
    expect(await byRollup()).toEqual([
      [`${today()} ${MODEL}`, [6, Math.round(Number(dollars(Object.values(ANSWERS))) * 1e6), 1]],
    ]);

    const [pending] = await s.sql<{ n: number }>(`SELECT count(*)::int AS n FROM usage_rollup_delta`);
    expect(pending!.n).toBeGreaterThan(0);
    await s.app.runtime.services.usageReports.compactRollup(s.config.PROMPT_LOG_RETENTION_MONTHS);
    expect(await s.sql(`SELECT count(*)::int AS n FROM usage_rollup_delta`)).toEqual([{ n: 0 }]);
    for (const where of ranges) expect(await byRollup(where), JSON.stringify(where)).toEqual(await byLogs(where));
  });

  it('refuses bad input with BAD_USER_INPUT, strangers with UNAUTHENTICATED', async () => {
    const bad = async (vars: Record<string, unknown>) => codes(await gql(s.url, REPORT, vars, admin.token));
    expect(await bad({ groupBy: [] })).toEqual(['BAD_USER_INPUT']);
    expect(await bad({ groupBy: ['DAY', 'DAY'] })).toEqual(['BAD_USER_INPUT']);
    expect(
      await bad({
        groupBy: ['DAY'],
        where: { from: new Date().toISOString(), to: new Date(Date.now() - 1000).toISOString() },
      }),
    ).toEqual(['BAD_USER_INPUT']);
    expect(await bad({ groupBy: ['DAY'], first: 1001 })).toEqual(['BAD_USER_INPUT']);
    expect(await bad({ groupBy: ['DAY'], after: 'not-a-cursor' })).toEqual(['BAD_USER_INPUT']);
    expect(await bad({ groupBy: ['DAY'], where: { userId: 'nope' } })).toEqual(['BAD_USER_INPUT']);
    expect(codes(await gql(s.url, REPORT, { groupBy: ['DAY'] }))).toEqual(['UNAUTHENTICATED']);
  });

  it('is costed by its page size', async () => {
    const r = await gql(s.url, REPORT, { groupBy: ['DAY'], first: 1000 }, admin.token, {});
    expect(codes(r)).toEqual([]);
    const alias = `query { ${Array.from({ length: 5 }, (_, i) => `r${i}: usageReport(groupBy: [DAY], first: 1000) { rows { day user { id username name } project { id name } task { id title } requests costUsd } }`).join(' ')} }`;
    expect(codes(await gql(s.url, alias, {}, admin.token))).toEqual(['QUERY_TOO_COMPLEX']);
  });

  it('tells the viewers who may see a new call, live (usageRecorded)', async () => {
    const maintainerWs = wsClient(s.wsUrl, maintainer.token);
    const strangerWs = wsClient(s.wsUrl, stranger.token);
    onTestFinished(async () => {
      await maintainerWs.dispose();
      await strangerWs.dispose();
    });
    const listeners = busListeners(s);
    const toMaintainer = subscribe(maintainerWs, `subscription { usageRecorded { recordedAt } }`);
    const toStranger = subscribe(strangerWs, `subscription { usageRecorded { recordedAt } }`);
    await listeners.registered(2);
    const conversation = (await ok(s.url, START, { input: { providerId, taskId: t.task.id } }, member.token))
      .startConversation.id;
    fake.script({ usage: { prompt_tokens: 250, completion_tokens: 250 } });
    expect(codes(await send(member, conversation, PROMPTS.code))).toEqual([]);
    expect((await toMaintainer.next(5000)).usageRecorded.recordedAt).toBeTruthy();
    await sentinel(s, strangerWs, stranger);
    expect(toStranger.received).toEqual([]);
    toMaintainer.dispose();
    toStranger.dispose();
  });
});

describe('exports', () => {
  const get = (path: string, token?: string) =>
    fetch(`${s.app.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const csvRows = (text: string) =>
    text
      .trimEnd()
      .split('\r\n')
      .map((l) => l.split(','));

  it("GET /exports/usage.csv streams the report as CSV with a header row, with the report's visibility", async () => {
    const res = await get('/exports/usage.csv?groupBy=USER,STATUS', admin.token);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8; header=present');
    expect(res.headers.get('content-disposition')).toContain('usage.csv');
    const [header, ...rows] = csvRows(await res.text());
    expect(header).toEqual([
      'user_id',
      'username',
      'status',
      'requests',
      'input_tokens',
      'output_tokens',
      'cost_usd',
      'blocked',
      'errors',
    ]);
    const r = await report(admin.token, ['USER', 'STATUS']);
    expect(rows).toEqual(
      r.rows.map((x: any) =>
        [
          x.user.id,
          x.user.username,
          x.status,
          x.requests,
          x.inputTokens,
          x.outputTokens,
          x.costUsd,
          x.blocked,
          x.errors,
        ].map(String),
      ),
    );

    const mine = csvRows(await (await get('/exports/usage.csv?groupBy=USER', maintainer.token)).text());
    expect(
      mine
        .slice(1)
        .map((row) => row[0])
        .sort(),
    ).toEqual([member.id, maintainer.id].sort());
    const dayModel = csvRows(
      await (
        await get(
          `/exports/usage.csv?groupBy=DAY,MODEL&from=${encodeURIComponent(new Date(Date.now() - 86400_000).toISOString())}`,
          member.token,
        )
      ).text(),
    );
    expect(dayModel[0]).toEqual([
      'day',
      'model',
      'requests',
      'input_tokens',
      'output_tokens',
      'cost_usd',
      'blocked',
      'errors',
    ]);
    expect(dayModel.slice(1).every((row) => row[0] === today())).toBe(true);
    const tokens = csvRows(await (await get('/exports/usage.csv?groupBy=API_TOKEN', stranger.token)).text());
    expect(tokens.map((row) => row.slice(0, 3))).toEqual([
      ['api_token_id', 'api_token_name', 'requests'],
      [tokenId, 'report-script', '2'],
    ]);
    // Nothing to report: still the header.
    expect(await (await get(`/exports/usage.csv?groupBy=DAY`, idle.token)).text()).toBe(
      'day,requests,input_tokens,output_tokens,cost_usd,blocked,errors\r\n',
    );
  });

  it('answers 401 without a token, 400 for bad parameters', async () => {
    for (const path of ['/exports/usage.csv?groupBy=DAY', '/exports/prompt-logs.jsonl', '/exports/audit.jsonl']) {
      const res = await get(path);
      expect(res.status, path).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect(((await res.json()) as any).errors[0].extensions.code).toBe('UNAUTHENTICATED');
      expect((await get(path, 'not-a-token')).status).toBe(401);
    }
    const bad = await get('/exports/usage.csv?groupBy=DAY,COLOUR', admin.token);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).errors[0].extensions.code).toBe('BAD_USER_INPUT');
    expect((await get('/exports/usage.csv?groupBy=', admin.token)).status).toBe(400);
    expect((await get('/exports/prompt-logs.jsonl?from=yesterday', admin.token)).status).toBe(400);
  });

  it("GET /exports/prompt-logs.jsonl: one JSON object per line, admins everyone's, others their own", async () => {
    const res = await get('/exports/prompt-logs.jsonl', member.token);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
    const lines = (await res.text())
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.length).toBeGreaterThanOrEqual(3);
    expect(new Set(lines.map((l) => l.userId))).toEqual(new Set([member.id]));
    expect(lines.slice(0, 3).map((l) => l.status)).toEqual(['SUCCESS', 'SUCCESS', 'ERROR']);
    expect(lines[0]).toMatchObject({
      model: MODEL,
      promptTokens: 1000,
      completionTokens: 500,
      costUsd: '0.004000',
      prompt: PROMPTS.code,
      taskId: t.task.id,
    });

    const everyone = (await (await get('/exports/prompt-logs.jsonl', admin.token)).text())
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(new Set(everyone.map((l) => l.userId))).toEqual(new Set([member.id, maintainer.id, stranger.id]));
    const strangers = (await (await get(`/exports/prompt-logs.jsonl?userId=${stranger.id}`, admin.token)).text())
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(strangers.map((l) => [l.status, l.apiTokenId])).toEqual([
      ['SUCCESS', tokenId],
      ['BLOCKED', tokenId],
    ]);
    // Someone else asking for another user's logs still gets only their own.
    const own = (await (await get(`/exports/prompt-logs.jsonl?userId=${stranger.id}`, member.token)).text())
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(new Set(own.map((l) => l.userId))).toEqual(new Set([member.id]));
    expect(
      await (
        await get(
          `/exports/prompt-logs.jsonl?from=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`,
          admin.token,
        )
      ).text(),
    ).toBe('');
  });

  it('GET /exports/usage.csv quotes what a spreadsheet would run as a formula', async () => {
    const risky = (
      await ok(
        s.url,
        `mutation($input: CreateTaskInput!) { createTask(input: $input) { id } }`,
        { input: { title: '=HYPERLINK("http://evil.test","open")', projectId: t.project.id } },
        owner.token,
      )
    ).createTask;
    await ok(
      s.url,
      `mutation($i: AssignTaskInput!) { assignTask(input: $i) { id } }`,
      { i: { taskId: risky.id, userId: member.id } },
      admin.token,
    );
    const conversation = (await ok(s.url, START, { input: { providerId, taskId: risky.id } }, member.token))
      .startConversation.id;
    fake.script({ usage: { prompt_tokens: 250, completion_tokens: 250 } });
    expect(codes(await send(member, conversation, PROMPTS.code))).toEqual([]);
    const text = await (await get(`/exports/usage.csv?groupBy=TASK&taskId=${risky.id}`, member.token)).text();
    expect(text.split('\r\n')[1]).toBe(
      `${risky.id},"'=HYPERLINK(""http://evil.test"",""open"")",1,250,250,0.001500,0,0`,
    );
  });

  it('GET /exports/audit.jsonl: admins only, each event with its hash and the previous one, verifiable by the reader', async () => {
    // Sealing links what is committed; verifyAuditChain seals first.
    expect((await ok(s.url, `{ verifyAuditChain { ok } }`, {}, admin.token)).verifyAuditChain.ok).toBe(true);
    expect((await get('/exports/audit.jsonl', member.token)).status).toBe(403);
    const res = await get('/exports/audit.jsonl', admin.token);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
    const events = (await res.text())
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    const sealed = events.filter((e) => e.hash);
    expect(sealed.length).toBeGreaterThan(5);
    expect(sealed.some((e) => e.action === 'apiToken.create' || e.entityType === 'ApiToken')).toBe(true);
    let prev = '0'.repeat(64);
    for (const [i, e] of sealed.entries()) {
      expect(e.seq).toBe(i + 1);
      expect(e.prevHash).toBe(prev);
      const { hash, sealedAt: _sealedAt, ...content } = e;
      // What a SIEM would do: SHA-256 of the RFC 8785 canonical JSON of the event without its own hash.
      expect(createHash('sha256').update(canonicalize(content)).digest('hex')).toBe(hash);
      prev = hash;
    }
  });
});
