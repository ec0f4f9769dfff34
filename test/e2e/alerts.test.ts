import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';

import {
  CreateContainerDocument,
  CreateWebhookDocument,
  DeleteWebhookDocument,
  McpServerHeartbeatDocument,
  NotificationDeliveriesDocument,
  NotificationPreferencesDocument,
  NotificationsDocument,
  RegisterMcpServerDocument,
  ReportContainerStatusDocument,
  RequestApprovalDocument,
  SendNotificationDocument,
  SetNotificationPreferenceDocument,
  WebhooksDocument,
  type CreateWebhookInput,
  type NotificationType,
} from '../generated/graphql.js';
import { codes, gql, ok } from '../support/client.js';
import { startMailbox, type Mailbox } from '../support/mailbox.js';
import { team } from '../support/projects.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, unique, type TestUser } from '../support/users.js';

const JOB = 'work.deliverNotifications';

/** A local HTTP receiver that keeps each request's raw body and headers, answering from a plan of statuses (200 once used up). */
async function startReceiver() {
  const requests: { headers: IncomingHttpHeaders; body: string }[] = [];
  const plan: number[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const status = plan.shift() ?? 200;
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'nope');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    requests,
    answer: (...statuses: number[]) => void plan.push(...statuses),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

let s: TestServer;
let admin: TestUser;
let mailbox: Mailbox;

beforeAll(async () => {
  mailbox = await startMailbox();
  s = await startTestServer({ env: { SMTP_URL: mailbox.url, NOTIFICATION_MAX_ATTEMPTS: '3' } });
  admin = await firstAdmin(s);
});
afterAll(async () => {
  await s?.close();
  await mailbox?.close();
});

async function deliver() {
  const r = await s.app.runtime.scheduler.runNow(JOB);
  expect(r.ran).toBe(true);
  return r.result as { claimed: number; sent: number; retrying: number; failed: number };
}
const makeDue = () =>
  s.sql(`UPDATE notifications SET next_attempt_at = now() - interval '1 second' WHERE delivery_status = 'PENDING'`);
const setPreference = (u: TestUser, type: NotificationType, channels: string[]) =>
  gql(s.url, SetNotificationPreferenceDocument, { input: { type, channels: channels as never } }, u.token);
const inbox = async (u: TestUser) =>
  (await ok(s.url, NotificationsDocument, { first: 50 }, u.token)).notifications.edges.map((e) => e.node);

async function createWebhook(input: CreateWebhookInput) {
  const created = (await ok(s.url, CreateWebhookDocument, { input }, admin.token)).createWebhook;
  onTestFinished(async () => void (await gql(s.url, DeleteWebhookDocument, { id: created.webhook.id }, admin.token)));
  return created;
}

/** An MCP server that reports a failure: every admin gets an ERROR notification. */
async function failingMcpServer(error: string) {
  const name = unique('mcp-');
  const server = (
    await ok(s.url, RegisterMcpServerDocument, { input: { name, serverType: 'stdio', command: 'node' } }, admin.token)
  ).registerMcpServer;
  await ok(s.url, McpServerHeartbeatDocument, { input: { id: server.id } }, admin.token);
  await ok(s.url, McpServerHeartbeatDocument, { input: { id: server.id, ok: false, error } }, admin.token);
  return { name, title: `MCP server ${name} is in error` };
}

describe('notification preferences', () => {
  it('lists every type with WEB by default, and refuses an empty or non-preference channel list', async () => {
    const u = await createUser(s, admin);
    const prefs = (await ok(s.url, NotificationPreferencesDocument, {}, u.token)).notificationPreferences;
    expect(prefs.map((p) => p.type).sort()).toEqual(['ALERT', 'APPROVAL', 'ERROR', 'INFO', 'STATUS']);
    expect(prefs.every((p) => p.isDefault && p.channels.join() === 'WEB')).toBe(true);

    expect(codes(await setPreference(u, 'ALERT', []))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await setPreference(u, 'ALERT', ['SMS']))).toEqual(['BAD_USER_INPUT']);
    const set = await setPreference(u, 'ALERT', ['EMAIL', 'WEB', 'EMAIL']);
    expect(set.data?.setNotificationPreference).toEqual({
      type: 'ALERT',
      channels: ['EMAIL', 'WEB'],
      isDefault: false,
    });
    const after = (await ok(s.url, NotificationPreferencesDocument, {}, u.token)).notificationPreferences;
    expect(after.find((p) => p.type === 'ALERT')).toEqual({
      type: 'ALERT',
      channels: ['EMAIL', 'WEB'],
      isDefault: false,
    });
    expect(codes(await gql(s.url, NotificationPreferencesDocument, {}))).toEqual(['UNAUTHENTICATED']);

    // An admin's notification without a channel follows the preference too; with one, it uses that one.
    const [byPreference] = (
      await ok(
        s.url,
        SendNotificationDocument,
        { input: { userIds: [u.id], title: 'Heads-up', type: 'ALERT' } },
        admin.token,
      )
    ).sendNotification;
    expect(byPreference).toMatchObject({ channel: 'WEB', deliveryStatus: 'SENT' });
    const [explicit] = (
      await ok(
        s.url,
        SendNotificationDocument,
        { input: { userIds: [u.id], title: 'Web only', type: 'ALERT', channel: 'WEB' } },
        admin.token,
      )
    ).sendNotification;
    const mine = (await ok(s.url, NotificationDeliveriesDocument, {}, u.token)).notifications.edges.map((e) => e.node);
    expect(mine.find((n) => n.id === byPreference!.id)!.deliveries).toEqual([
      expect.objectContaining({ channel: 'EMAIL', deliveryStatus: 'PENDING' }),
    ]);
    expect(mine.find((n) => n.id === explicit!.id)!.deliveries).toEqual([]);
  });

  it('routes an approval request to the decider by e-mail only, as they chose, one notification in the inbox', async () => {
    const { owner, task, members } = await team(s, admin, ['CONTRIBUTOR']);
    expect((await setPreference(owner, 'APPROVAL', ['EMAIL'])).errors).toBeUndefined();
    const actionType = unique('deploy-');
    await ok(s.url, RequestApprovalDocument, { input: { taskId: task.id, actionType } }, members[0]!.token);

    // Not live on the web: it waits for the delivery job, which e-mails it.
    const [n] = (await inbox(owner)).filter((x) => x.title.includes(actionType));
    expect(n).toMatchObject({ channel: 'EMAIL', deliveryStatus: 'PENDING' });
    await deliver();
    const mail = await mailbox.next(owner.email);
    expect(mail.text).toContain(`Subject: Approval requested: ${actionType}`);
    expect((await inbox(owner)).filter((x) => x.title.includes(actionType))).toEqual([
      expect.objectContaining({ id: n!.id, channel: 'EMAIL', deliveryStatus: 'SENT' }),
    ]);

    // The admin (no preference) got it on the web only: no mail.
    const toAdmin = (await inbox(admin)).filter((x) => x.title.includes(actionType));
    expect(toAdmin).toEqual([expect.objectContaining({ channel: 'WEB', deliveryStatus: 'SENT' })]);
    expect(
      mailbox.received.filter((m) => m.to.includes(admin.email.toLowerCase()) && m.text.includes(actionType)),
    ).toEqual([]);
  });
});

describe('system notifications follow the preferences', () => {
  it('tells the people who run a project by e-mail when one of its containers fails', async () => {
    const { owner, project, members } = await team(s, admin, ['MAINTAINER', 'CONTRIBUTOR']);
    const [maintainer, contributor] = members;
    expect((await setPreference(maintainer!, 'ERROR', ['WEB', 'EMAIL'])).errors).toBeUndefined();
    const container = (
      await ok(s.url, CreateContainerDocument, { input: { projectId: project.id, name: unique('c') } }, owner.token)
    ).createContainer;
    await ok(
      s.url,
      ReportContainerStatusDocument,
      { input: { id: container.id, status: 'ERROR', message: 'image pull failed' } },
      admin.token,
    );

    const title = `Container ${container.name} failed`;
    for (const u of [owner, maintainer!])
      expect((await inbox(u)).filter((n) => n.title === title)).toEqual([
        expect.objectContaining({ channel: 'WEB', message: 'image pull failed' }),
      ]);
    expect((await inbox(contributor!)).filter((n) => n.title === title)).toEqual([]);
    await deliver();
    expect((await mailbox.next(maintainer!.email)).text).toContain(`Subject: ${title}`);
    expect(mailbox.received.filter((m) => m.to.includes(owner.email.toLowerCase()) && m.text.includes(title))).toEqual(
      [],
    );
  });
});

describe('organisation webhooks', () => {
  it('are for admins; the secret is shown once and stored encrypted', async () => {
    const u = await createUser(s, admin);
    const input = { name: unique('hook-'), url: 'https://hooks.example.com/steward', types: ['ALERT' as const] };
    expect(codes(await gql(s.url, CreateWebhookDocument, { input }, u.token))).toEqual(['FORBIDDEN']);
    expect(codes(await gql(s.url, WebhooksDocument, {}, u.token))).toEqual(['FORBIDDEN']);
    expect(
      codes(await gql(s.url, CreateWebhookDocument, { input: { ...input, url: 'ftp://example.com/x' } }, admin.token)),
    ).toEqual(['BAD_USER_INPUT']);

    const created = await createWebhook(input);
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(created.webhook).toMatchObject({
      name: input.name,
      url: input.url,
      format: 'STANDARD',
      types: ['ALERT'],
      isActive: true,
    });
    expect(codes(await gql(s.url, CreateWebhookDocument, { input }, admin.token))).toEqual(['CONFLICT']);
    const [row] = await s.sql<{ secret: Record<string, string> }>(`SELECT secret FROM webhooks WHERE id = $1`, [
      created.webhook.id,
    ]);
    expect(Object.keys(row!.secret).sort()).toEqual(['ct', 'dk', 'v']);
    expect(JSON.stringify(row)).not.toContain(created.secret.slice(6, 20));

    const listed = (await ok(s.url, WebhooksDocument, { first: 100 }, admin.token)).webhooks;
    expect(listed.edges.map((e) => e.node.id)).toContain(created.webhook.id);
    expect(await ok(s.url, DeleteWebhookDocument, { id: created.webhook.id }, admin.token)).toEqual({
      deleteWebhook: true,
    });
    expect(codes(await gql(s.url, DeleteWebhookDocument, { id: created.webhook.id }, admin.token))).toEqual([
      'NOT_FOUND',
    ]);
  });

  it('POSTs a notification signed per Standard Webhooks, retrying after a failed first delivery with the same webhook-id', async () => {
    const receiver = await startReceiver();
    onTestFinished(() => receiver.close());
    const { secret } = await createWebhook({ name: unique('ops-'), url: receiver.url, types: ['ERROR'] });
    expect((await setPreference(admin, 'ERROR', ['WEB', 'WEBHOOK'])).errors).toBeUndefined();
    onTestFinished(async () => void (await setPreference(admin, 'ERROR', ['WEB'])));

    receiver.answer(500);
    const { name, title } = await failingMcpServer('exit code 1');
    const [primary] = (await inbox(admin)).filter((n) => n.title === title);
    expect(primary).toMatchObject({ channel: 'WEB', deliveryStatus: 'SENT' });

    expect(await deliver()).toMatchObject({ claimed: 1, retrying: 1 });
    expect(receiver.requests).toHaveLength(1);
    const [delivery] = await s.sql<{
      id: string;
      delivery_status: string;
      last_delivery_error: string;
      delivery_attempts: number;
    }>(`SELECT id, delivery_status, last_delivery_error, delivery_attempts FROM notifications WHERE primary_id = $1`, [
      primary!.id,
    ]);
    expect(delivery).toMatchObject({
      delivery_status: 'PENDING',
      delivery_attempts: 1,
      last_delivery_error: 'webhook answered 500 Internal Server Error',
    });
    // The recipient sees it too, as a delivery of the inbox's notification.
    const deliveries = async () =>
      (await ok(s.url, NotificationDeliveriesDocument, {}, admin.token)).notifications.edges.find(
        (e) => e.node.id === primary!.id,
      )!.node.deliveries;
    expect(await deliveries()).toEqual([
      {
        id: delivery!.id,
        channel: 'WEBHOOK',
        deliveryStatus: 'PENDING',
        deliveryAttempts: 1,
        lastDeliveryError: 'webhook answered 500 Internal Server Error',
        sentAt: null,
      },
    ]);

    await deliver(); // still backing off: nothing sent
    expect(receiver.requests).toHaveLength(1);
    await makeDue();
    expect(await deliver()).toMatchObject({ sent: 1 });
    expect(receiver.requests).toHaveLength(2);
    expect(await deliveries()).toEqual([
      expect.objectContaining({ id: delivery!.id, deliveryStatus: 'SENT', deliveryAttempts: 2 }),
    ]);

    const verifier = new StandardWebhook(secret);
    for (const r of receiver.requests) {
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers['webhook-id']).toBe(delivery!.id);
      expect(r.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
      const headers = {
        'webhook-id': String(r.headers['webhook-id']),
        'webhook-timestamp': String(r.headers['webhook-timestamp']),
        'webhook-signature': String(r.headers['webhook-signature']),
      };
      expect(verifier.verify(r.body, headers)).toMatchObject({ type: 'notification.error' });
      // The signature covers the body: a changed byte fails.
      expect(() => verifier.verify(r.body.replace('exit code 1', 'exit code 2'), headers)).toThrow();
    }
    const payload = JSON.parse(receiver.requests[1]!.body);
    expect(payload).toMatchObject({
      type: 'notification.error',
      data: {
        notificationId: primary!.id,
        type: 'ERROR',
        priority: 'HIGH',
        title,
        message: 'exit code 1',
        recipient: { id: admin.id, email: admin.email },
      },
    });
    expect(Date.parse(payload.timestamp)).not.toBeNaN();
    expect(name).toBeTruthy();
    // The inbox still shows the one notification, not its webhook delivery.
    expect((await inbox(admin)).filter((n) => n.title === title)).toHaveLength(1);
  });

  it('sends a Slack-compatible message to a SLACK webhook, and only the types a webhook takes', async () => {
    const slack = await startReceiver();
    const other = await startReceiver();
    onTestFinished(async () => void (await Promise.all([slack.close(), other.close()])));
    await createWebhook({ name: unique('slack-'), url: slack.url, format: 'SLACK', types: [] });
    await createWebhook({ name: unique('alerts-only-'), url: other.url, types: ['ALERT'] });
    expect((await setPreference(admin, 'ERROR', ['WEBHOOK'])).errors).toBeUndefined();
    onTestFinished(async () => void (await setPreference(admin, 'ERROR', ['WEB'])));

    const { title } = await failingMcpServer('out of <memory> & swap');
    const [primary] = (await inbox(admin)).filter((n) => n.title === title);
    expect(primary).toMatchObject({ channel: 'WEBHOOK', deliveryStatus: 'PENDING' });
    await deliver();
    expect(other.requests).toHaveLength(0);
    expect(slack.requests).toHaveLength(1);
    const body = JSON.parse(slack.requests[0]!.body);
    expect(body.text).toBe(`${title}: out of <memory> & swap`);
    expect(body.blocks[0]).toEqual({
      type: 'section',
      text: { type: 'mrkdwn', text: `*${title}*\nout of &lt;memory&gt; &amp; swap` },
    });
    expect(body.blocks[1].elements[0].text).toContain('ERROR · HIGH');
    expect(slack.requests[0]!.headers['webhook-signature']).toMatch(/^v1,/);
  });

  it('records a WEBHOOK notification no webhook takes as FAILED, saying why', async () => {
    expect((await setPreference(admin, 'ERROR', ['WEBHOOK'])).errors).toBeUndefined();
    onTestFinished(async () => void (await setPreference(admin, 'ERROR', ['WEB'])));
    const { title } = await failingMcpServer('crashed');
    const [n] = (await inbox(admin)).filter((x) => x.title === title);
    expect(n).toMatchObject({
      channel: 'WEBHOOK',
      deliveryStatus: 'FAILED',
      lastDeliveryError: 'no active organisation webhook takes ERROR notifications',
    });
  });
});
