import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { classifyIntent } from '../../src/shared/intent-classifier.js';
import { chromiumAvailable, launchChromium } from '../support/browser.js';
import { codes, gql, ok } from '../support/client.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';
import { team } from '../support/projects.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, type TestUser } from '../support/users.js';
import { busListeners } from '../support/wait.js';

const available = chromiumAvailable('usage-dashboard.test.ts');

const CREATE_PROVIDER = `mutation($input: CreateProviderInput!) { createProvider(input: $input) { id } }`;
const START = `mutation($input: StartConversationInput!) { startConversation(input: $input) { id } }`;
const SEND = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { id } }`;
const UPDATE_TASK = `mutation($input: UpdateTaskInput!) { updateTask(input: $input) { id allowedIntents } }`;

/** $ for what the provider reported, at $0.002 / $0.004 per 1k tokens (multiples of 250 tokens: exact micro-dollars). */
const cost = (u: { prompt_tokens: number; completion_tokens: number }) =>
  (u.prompt_tokens * 2 + u.completion_tokens * 4) / 1_000_000;

describe.skipIf(!available)('GET /dashboard/usage in headless Chromium', () => {
  let s: TestServer;
  let fake: FakeOpenAI;
  let admin: TestUser;
  let context: BrowserContext;
  let page: Page;
  let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;

  beforeAll(async () => {
    execFileSync('npm', ['run', 'build:dashboard', '--silent'], { stdio: 'inherit' });
    fake = await startFakeOpenAI();
    s = await startTestServer({ env: { AI_PROVIDER_FALLBACK: 'false' } });
    admin = await firstAdmin(s);
    browser = await launchChromium({ width: 1280, height: 900 });
    context = browser.context;
    page = context.pages()[0] ?? (await context.newPage());
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await s?.close();
    await fake?.close();
  });

  it('draws spend per day by model, top lists and intents, and a new call moves the chart without a reload', async () => {
    const providers = new Map<string, string>();
    for (const [name, model] of [
      ['openai-main', 'gpt-main'],
      ['openai-mini', 'gpt-mini'],
    ] as const) {
      const input = {
        name,
        providerType: 'OPENAI',
        modelName: model,
        apiEndpoint: fake.baseURL,
        apiKey: 'sk-platform',
        inputCostPer1k: '0.002000',
        outputCostPer1k: '0.004000',
        maxTokens: 1000,
        timeoutSeconds: 5,
      };
      providers.set(model, (await ok(s.url, CREATE_PROVIDER, { input }, admin.token)).createProvider.id);
    }
    const providerOf = (model: string) => providers.get(model)!;
    const t = await team(s, admin, ['MAINTAINER', 'CONTRIBUTOR'], 'Write the release notes');
    // A call may be bound only to a task its user is assigned to (prompt governance).
    for (const u of [t.owner, ...t.members])
      await ok(
        s.url,
        `mutation($i: AssignTaskInput!) { assignTask(input: $i) { id } }`,
        { i: { taskId: t.task.id, userId: u.id } },
        admin.token,
      );
    const [maintainer, member] = t.members as [TestUser, TestUser];
    const outsider = await createUser(s, admin);
    await ok(s.url, UPDATE_TASK, { input: { id: t.task.id, allowedIntents: ['documentation'] } }, t.owner.token);

    const call = async (
      u: TestUser,
      model: string,
      content: string,
      usage: { prompt_tokens: number; completion_tokens: number },
      where: Record<string, string> = {},
    ) => {
      const conversation = (await ok(s.url, START, { input: { providerId: providerOf(model), ...where } }, u.token))
        .startConversation.id;
      fake.script({ usage });
      expect(codes(await gql(s.url, SEND, { input: { conversationId: conversation, content } }, u.token))).toEqual([]);
    };
    const first = { prompt_tokens: 1000, completion_tokens: 500 };
    const second = { prompt_tokens: 500, completion_tokens: 250 };
    await call(member, 'gpt-main', 'Write the documentation for the release', first, { taskId: t.task.id });
    await call(member, 'gpt-mini', 'Debug the failing release build', second, { taskId: t.task.id });

    const foreign: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(s.app.url) && !r.url().startsWith(s.app.url.replace('http', 'ws'))) foreign.push(r.url());
    });
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    const listeners = busListeners(s);
    await page.goto(`${s.app.url}/dashboard/usage`);
    await page.fill('#login', maintainer.username);
    await page.fill('#password', maintainer.password);
    await page.click('button[type=submit]');
    await page.locator('#usage').waitFor({ state: 'visible' });
    // The pages' shared stylesheet (/dashboard/common.css) is served and applied.
    expect(await page.locator('header').evaluate((h) => (globalThis as any).getComputedStyle(h).display)).toBe('flex');
    await page.waitForSelector('body[data-live="true"]');
    await listeners.registered(1);

    const chart = page.locator('#spend-chart');
    const today = async () => Number(await chart.getAttribute('data-today'));
    await page.waitForSelector('#spend-chart[data-today]');
    expect(await today()).toBeCloseTo(cost(first) + cost(second), 6);
    expect(await chart.getAttribute('data-models')).toBe('gpt-main,gpt-mini');
    await expect(page.locator('#top-users').textContent()).resolves.toContain(member.username);
    await expect(page.locator('#top-projects').textContent()).resolves.toContain(t.project.name);
    // The task allows documentation only: the debugging prompt's intent is flagged as outside it.
    const debugIntent = classifyIntent('Debug the failing release build').intent;
    expect(debugIntent).not.toBe('documentation');
    expect(await page.locator('#intents td.outside').allTextContents()).toContain(`${debugIntent} (outside)`);

    await page.evaluate(() => ((globalThis as any).stewardTestMarker = 'before the calls'));
    // A call the maintainer may not see (outside their project), then one they may: the chart moves by the second only.
    await call(outsider, 'gpt-main', 'Write the documentation for my side project', {
      prompt_tokens: 4000,
      completion_tokens: 4000,
    });
    const third = { prompt_tokens: 2000, completion_tokens: 1000 };
    await call(member, 'gpt-main', 'Write the documentation for the changelog', third, { taskId: t.task.id });
    const expected = (cost(first) + cost(second) + cost(third)).toFixed(6);
    // Functions, not strings: the page's CSP forbids eval.
    await page.waitForFunction(
      (v) => (globalThis as any).document.getElementById('spend-chart')?.dataset.today === v,
      expected,
      { timeout: 10_000 },
    );
    // Still the same document: the marker set before the calls survived (no reload).
    expect(await page.evaluate(() => (globalThis as any).stewardTestMarker)).toBe('before the calls');

    // A call refused by the member's hourly limit: counted as blocked on the page, live too.
    await ok(
      s.url,
      `mutation($input: SetUserQuotaInput!) { setUserQuota(input: $input) { requestsPerHour } }`,
      { input: { userId: member.id, requestsPerHour: 1 } },
      admin.token,
    );
    const refused = (
      await ok(s.url, START, { input: { providerId: providerOf('gpt-main'), taskId: t.task.id } }, member.token)
    ).startConversation.id;
    expect(
      codes(
        await gql(
          s.url,
          SEND,
          { input: { conversationId: refused, content: 'Write the documentation again' } },
          member.token,
        ),
      ),
    ).not.toEqual([]);
    await page.locator('#blocked-total strong', { hasText: '1' }).waitFor({ timeout: 10_000 });
    expect(await page.locator('#blocked .blocked-day').count()).toBe(1);
    expect(await today()).toBeCloseTo(cost(first) + cost(second) + cost(third), 6);

    mkdirSync('docs', { recursive: true });
    await page.screenshot({ path: 'docs/usage.png', fullPage: true });
    expect(pageErrors).toEqual([]);
    expect(foreign).toEqual([]);
  }, 90_000);
});
