import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  AddProjectMemberDocument,
  ApprovalDecidedDocument,
  ApprovalDocument,
  CreateContainerDocument,
  CreateProjectDocument,
  RequestApprovalDocument,
  SendNotificationDocument,
} from '../generated/graphql.js';
import { chromiumAvailable, launchChromium } from '../support/browser.js';
import { ok, subscribe, wsClient } from '../support/client.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, type TestUser } from '../support/users.js';
import { busListeners } from '../support/wait.js';

const available = chromiumAvailable('dashboard.test.ts');

describe.skipIf(!available)('GET /dashboard in headless Chromium', () => {
  let s: TestServer;
  let admin: TestUser;
  let context: BrowserContext;
  let page: Page;
  let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;

  beforeAll(async () => {
    // The page is bundled at build time: build it, as `npm run build` does.
    execFileSync('npm', ['run', 'build:dashboard', '--silent'], { stdio: 'inherit' });
    s = await startTestServer();
    admin = await firstAdmin(s);
    browser = await launchChromium({ width: 1280, height: 760 });
    context = browser.context;
    page = context.pages()[0] ?? (await context.newPage());
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await s?.close();
  });

  it('signs in, shows a requested approval live, and approving it reaches the requester', async () => {
    const maintainer = await createUser(s, admin);
    const requester = await createUser(s, admin);
    const project = (await ok(s.url, CreateProjectDocument, { input: { name: 'payments-api' } }, admin.token))
      .createProject;
    await ok(
      s.url,
      AddProjectMemberDocument,
      { input: { projectId: project.id, userId: maintainer.id, role: 'MAINTAINER' } },
      admin.token,
    );
    await ok(
      s.url,
      AddProjectMemberDocument,
      { input: { projectId: project.id, userId: requester.id, role: 'CONTRIBUTOR' } },
      admin.token,
    );

    // No network beyond Steward itself: the page works offline (no CDN).
    const foreign: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(s.app.url) && !r.url().startsWith(s.app.url.replace('http', 'ws'))) foreign.push(r.url());
    });
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));

    const listeners = busListeners(s);
    await page.goto(`${s.app.url}/dashboard`);
    await page.fill('#login', maintainer.username);
    await page.fill('#password', maintainer.password);
    await page.click('button[type=submit]');
    await page.locator('#board').waitFor({ state: 'visible' });
    // The pages' shared stylesheet (/dashboard/common.css) is served and applied.
    expect(await page.locator('header').evaluate((h) => (globalThis as any).getComputedStyle(h).display)).toBe('flex');
    expect(await page.locator('#signin').isVisible()).toBe(false);
    await page.waitForSelector('body[data-live="true"]');
    await listeners.registered(5); // the page's five subscriptions are live on the server
    expect(await page.locator('#approvals .approval').count()).toBe(0);

    // Another user asks, through the API: the card appears without a reload.
    const watcher = wsClient(s.wsUrl, requester.token);
    const decided = subscribe(watcher, ApprovalDecidedDocument, { projectId: project.id });
    await listeners.registered(6);
    const approval = (
      await ok(
        s.url,
        RequestApprovalDocument,
        { input: { projectId: project.id, actionType: 'deploy to production' } },
        requester.token,
      )
    ).requestApproval;
    const card = page.locator(`#approvals .approval[data-id="${approval.id}"]`);
    await card.waitFor({ timeout: 10_000 });
    await expect(card.textContent()).resolves.toContain('deploy to production');

    await ok(
      s.url,
      SendNotificationDocument,
      { input: { userIds: [maintainer.id], title: 'Release 2.4 is ready for review' } },
      admin.token,
    );
    await page
      .locator('#notifications .notification', { hasText: 'Release 2.4 is ready for review' })
      .waitFor({ timeout: 10_000 });

    // A container of their project appears live too (containerStatusChanged on creation).
    const container = (
      await ok(s.url, CreateContainerDocument, { input: { projectId: project.id, name: 'payments-dev' } }, admin.token)
    ).createContainer;
    await page.locator(`#containers .container[data-id="${container.id}"]`).waitFor({ timeout: 10_000 });

    mkdirSync('docs', { recursive: true });
    await page.screenshot({ path: 'docs/dashboard.png' });

    await card.locator('button.approve').click();
    // Both sides: the requester receives approvalDecided, the API says APPROVED, the card goes.
    const event = await decided.next(10_000);
    expect(event.approvalDecided).toMatchObject({ id: approval.id, status: 'APPROVED' });
    expect((await ok(s.url, ApprovalDocument, { id: approval.id }, requester.token)).approval).toMatchObject({
      status: 'APPROVED',
      decidedBy: { id: maintainer.id },
    });
    await card.waitFor({ state: 'detached', timeout: 10_000 });

    decided.dispose();
    await watcher.dispose();
    expect(pageErrors).toEqual([]);
    expect(foreign).toEqual([]);
  }, 60_000);
});
