import { execFileSync } from 'node:child_process';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { SendNotificationDocument } from '../generated/graphql.js';
import { chromiumAvailable, launchChromium } from '../support/browser.js';
import { ok } from '../support/client.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, type TestUser } from '../support/users.js';

const available = chromiumAvailable('graphiql.test.ts');

/** A browser page that may reach `origin` only: every other request is refused and listed. */
async function offlinePage(context: BrowserContext, origin: string) {
  const page = await context.newPage();
  const refused: string[] = [];
  const errors: string[] = [];
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(`${origin}/`)) return route.continue();
    refused.push(url);
    return route.abort('internetdisconnected');
  });
  page.on('pageerror', (e) => errors.push(e.message));
  return { page, refused, errors };
}

/** Replaces the whole text of the Monaco editor inside `selector`. */
async function setEditor(page: Page, selector: string, text: string) {
  await page.locator(`${selector} .monaco-editor`).first().click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(text);
}

/** Types a new operation and waits until GraphiQL has taken it (its tab is named after the operation), so Run runs it. */
async function setQuery(page: Page, text: string, operationName: string) {
  await setEditor(page, '.graphiql-query-editor', text);
  await expect.poll(() => page.locator('.graphiql-tab-active').innerText(), { timeout: 10_000 }).toBe(operationName);
}

/** The response pane's text (Monaco draws spaces as no-break spaces). */
const responseText = async (page: Page) =>
  (await page.locator('.graphiql-response').innerText()).replace(/\u00a0/g, ' ');

describe.skipIf(!available)('GraphiQL at /graphiql, in headless Chromium with no network beyond the server', () => {
  let s: TestServer;
  let admin: TestUser;
  let context: BrowserContext;
  let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;

  beforeAll(async () => {
    // Bundled at build time, as `npm run build` does.
    execFileSync('npm', ['run', 'build:graphiql', '--silent'], { stdio: 'inherit' });
    s = await startTestServer();
    admin = await firstAdmin(s);
    browser = await launchChromium({ width: 1400, height: 900 });
    context = browser.context;
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await s?.close();
  });

  it('runs a query with the Authorization header from the headers editor, and a subscription over graphql-ws', async () => {
    const alice = await createUser(s, admin);
    const { page, refused, errors } = await offlinePage(context, s.app.url);
    const sockets: string[] = [];
    const frames: string[] = [];
    page.on('websocket', (ws) => {
      sockets.push(ws.url());
      ws.on('framesent', (f) => frames.push(`> ${String(f.payload).slice(0, 120)}`));
      ws.on('framereceived', (f) => frames.push(`< ${String(f.payload).slice(0, 120)}`));
    });

    await page.goto(`${s.app.url}/graphiql`);
    await page.locator('.graphiql-query-editor .monaco-editor').first().waitFor({ state: 'visible', timeout: 30_000 });
    // The headers editor is open with an Authorization header waiting for its token.
    const headersEditor = '.graphiql-editor-tool .graphiql-editor:not(.hidden)';
    await expect
      .poll(() => page.locator(`${headersEditor} .monaco-editor`).first().innerText(), { timeout: 10_000 })
      .toMatch(/"Authorization":\s"Bearer\s"/);
    await setEditor(page, headersEditor, JSON.stringify({ Authorization: `Bearer ${alice.token}` }));

    await setQuery(page, 'query WhoAmI { me { id email } }', 'WhoAmI');
    await page.locator('.graphiql-execute-button').click();
    await expect.poll(() => responseText(page), { timeout: 15_000 }).toContain(alice.email);
    expect(await responseText(page)).toContain(alice.id);

    const before = s.app.subscriptions;
    await setQuery(page, 'subscription Inbox { notificationReceived { id title } }', 'Inbox');
    await page.locator('.graphiql-execute-button').click();
    await expect.poll(() => s.app.subscriptions, { timeout: 20_000 }).toBeGreaterThan(before);
    const [n] = (
      await ok(
        s.url,
        SendNotificationDocument,
        { input: { userIds: [alice.id], title: 'Hello from the API' } },
        admin.token,
      )
    ).sendNotification;
    await expect.poll(() => responseText(page), { timeout: 15_000 }).toContain('Hello from the API');
    expect(await responseText(page)).toContain(n!.id);

    // One socket, authenticated at connection_init with the header from the editor.
    expect(sockets).toEqual([`${s.wsUrl}`]);
    expect(frames[0]).toMatch(/^> \{"type":"connection_init","payload":\{"authorization":"Bearer ey/);
    expect(refused).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);

  it('GET /graphql shows Apollo Sandbox, whose offline fallback links to /graphiql', async () => {
    const { page, refused } = await offlinePage(context, s.app.url);
    await page.goto(`${s.app.url}/graphql`);
    await expect.poll(() => page.locator('.fallback').innerText()).toContain('Apollo Sandbox cannot be loaded');
    // Sandbox itself needs Apollo's CDN, which this page may not reach.
    expect(refused.some((u) => u.startsWith('https://embeddable-sandbox.cdn.apollographql.com/'))).toBe(true);
    await page.getByRole('link', { name: 'open /graphiql' }).click();
    await page.waitForURL(`${s.app.url}/graphiql`);
    await page.locator('.graphiql-query-editor .monaco-editor').first().waitFor({ state: 'visible', timeout: 30_000 });
    await page.close();
  }, 120_000);
});

describe('GRAPHQL_LANDING_PAGE', () => {
  const browserGet = (url: string) => fetch(url, { headers: { accept: 'text/html' } });

  it('graphiql: GET /graphql in a browser is the bundled GraphiQL', async () => {
    execFileSync('npm', ['run', 'build:graphiql', '--silent'], { stdio: 'inherit' });
    const s = await startTestServer({ env: { GRAPHQL_LANDING_PAGE: 'graphiql' } });
    try {
      const res = await browserGet(`${s.app.url}/graphql`);
      expect(res.status).toBe(200);
      const html = await res.text();
      expect(html).toContain('<script type="module" src="/graphiql/main.js">');
      expect(html).not.toContain('apollographql.com');
      const css = await fetch(`${s.app.url}/graphiql/main.css`);
      expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
      expect((await fetch(`${s.app.url}/graphiql/..%2Fpackage.json`)).status).toBe(404);
    } finally {
      await s.close();
    }
  });

  it('off: no landing page and no /graphiql', async () => {
    const s = await startTestServer({ env: { GRAPHQL_LANDING_PAGE: 'off' } });
    try {
      const res = await browserGet(`${s.app.url}/graphql`);
      expect(res.headers.get('content-type') ?? '').not.toContain('text/html');
      expect((await browserGet(`${s.app.url}/graphiql`)).status).toBe(404);
    } finally {
      await s.close();
    }
  });
});
