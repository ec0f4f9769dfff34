import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';

import {
  ArchiveNotificationDocument,
  MarkAllNotificationsReadDocument,
  MarkNotificationReadDocument,
  NotificationReceivedDocument,
  NotificationsDocument,
  SendNotificationDocument,
  UnreadNotificationCountDocument,
  type NotificationWhere,
  type SendNotificationInput,
} from '../generated/graphql.js';
import { codes, gql, ok, subscribe, wsClient } from '../support/client.js';
import { startTestServer, type TestServer, type TestServerOptions } from '../support/server.js';
import { createUser, firstAdmin, unique, type TestUser } from '../support/users.js';
import { busListeners } from '../support/wait.js';

const JOB = 'work.deliverNotifications';
const MAX_ATTEMPTS = 3;

/** A local SMTP server on loopback that records what it accepts and refuses the first `n` attempts of a subject when told to. */
async function startSmtp() {
  const accepted: { to: string[]; raw: string }[] = [];
  const refusals = new Map<string, number>();
  let attempts = 0;
  const server = new SMTPServer({
    secure: false,
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      let raw = '';
      stream.on('data', (chunk: Buffer) => (raw += chunk.toString('utf8')));
      stream.on('end', () => {
        attempts++;
        const subject = /^Subject: (.*)$/m.exec(raw)?.[1]?.trim() ?? '';
        const left = refusals.get(subject) ?? 0;
        if (left > 0) {
          refusals.set(subject, left - 1);
          return callback(Object.assign(new Error('Mailbox busy, try again later'), { responseCode: 451 }));
        }
        accepted.push({ to: session.envelope.rcptTo.map((r) => r.address), raw });
        callback(null);
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://127.0.0.1:${port}?ignoreTLS=true`,
    accepted,
    get attempts() {
      return attempts;
    },
    /** Refuse the next `n` messages with this subject (451), then accept. */
    refuse: (subject: string, n: number) => void refusals.set(subject, n),
    mailsTitled: (subject: string) => accepted.filter((m) => m.raw.includes(`Subject: ${subject}`)),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A local webhook receiver (node:http) answering per notification title from a plan of statuses (200 once the plan is used up). */
async function startWebhook() {
  const requests: { headers: Record<string, unknown>; body: Record<string, unknown> }[] = [];
  const plans = new Map<string, number[]>();
  const server: Server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString('utf8')));
    req.on('end', () => {
      const body = JSON.parse(text) as Record<string, unknown>;
      requests.push({ headers: req.headers, body });
      const status = plans.get(String(body.title))?.shift() ?? 200;
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'nope');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/notify`,
    requests,
    /** Answer the next requests for this title with these statuses. */
    plan: (title: string, statuses: number[]) => void plans.set(title, [...statuses]),
    requestsFor: (title: string) => requests.filter((r) => r.body.title === title),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

let s: TestServer;
let admin: TestUser;
let smtp: Awaited<ReturnType<typeof startSmtp>>;
let webhook: Awaited<ReturnType<typeof startWebhook>>;

beforeAll(async () => {
  [smtp, webhook] = await Promise.all([startSmtp(), startWebhook()]);
  s = await startTestServer({
    env: { SMTP_URL: smtp.url, NOTIFICATION_WEBHOOK_URL: webhook.url, NOTIFICATION_MAX_ATTEMPTS: String(MAX_ATTEMPTS) },
  });
  admin = await firstAdmin(s);
});
afterAll(async () => {
  await s?.close();
  await Promise.all([smtp?.close(), webhook?.close()]);
});

async function serverForThisTest(opts: TestServerOptions = {}) {
  const server = await startTestServer(opts);
  onTestFinished(() => server.close());
  return server;
}

const send = async (input: SendNotificationInput, by: TestUser = admin, server = s) =>
  (await ok(server.url, SendNotificationDocument, { input }, by.token)).sendNotification;

/** One run of the delivery job, as the scheduler would start it. */
async function deliver(server = s) {
  const r = await server.app.runtime.scheduler.runNow(JOB);
  expect(r.ran).toBe(true);
  return r.result as { claimed: number; sent: number; retrying: number; failed: number };
}

interface DeliveryRow {
  delivery_status: string;
  delivery_attempts: number;
  last_delivery_error: string | null;
  sent_at: Date | null;
  /** Seconds from the database's now() to next_attempt_at. */
  wait: number;
}
const delivery = async (id: string, server = s) =>
  (
    await server.sql<DeliveryRow>(
      `SELECT delivery_status, delivery_attempts, last_delivery_error, sent_at, extract(epoch FROM next_attempt_at - now())::float AS wait
         FROM notifications WHERE id = $1`,
      [id],
    )
  )[0]!;

/** Moves a notification's next attempt (and its schedule, if any) into the past instead of sleeping. */
const makeDue = (id: string, server = s) =>
  server.sql(
    `UPDATE notifications SET next_attempt_at = now() - interval '1 second',
            scheduled_for = CASE WHEN scheduled_for IS NULL THEN NULL ELSE now() - interval '1 second' END
      WHERE id = $1`,
    [id],
  );

const list = async (u: TestUser, where?: NotificationWhere, first?: number, after?: string) =>
  (await ok(s.url, NotificationsDocument, { where, first, after }, u.token)).notifications;
const ids = async (u: TestUser, where?: NotificationWhere) => (await list(u, where)).edges.map((e) => e.node.id);
const unread = async (u: TestUser) =>
  (await ok(s.url, UnreadNotificationCountDocument, {}, u.token)).unreadNotificationCount;

function live(u: TestUser) {
  const client = wsClient(s.wsUrl, u.token);
  onTestFinished(() => client.dispose());
  return subscribe(client, NotificationReceivedDocument);
}

describe('live delivery on the WEB channel', () => {
  it('delivers an admin notification live to its user only', async () => {
    const [alice, bob] = await Promise.all([createUser(s, admin), createUser(s, admin)]);
    const listeners = busListeners(s);
    const toAlice = live(alice);
    const toBob = live(bob);
    const toAdmin = live(admin);
    await listeners.registered(3);

    const [n] = await send({
      userIds: [alice.id],
      title: 'Deploy finished',
      message: 'v2 is live',
      type: 'STATUS',
      priority: 'HIGH',
      data: { version: 'v2' },
    });
    expect(n).toMatchObject({
      title: 'Deploy finished',
      status: 'UNREAD',
      channel: 'WEB',
      deliveryStatus: 'SENT',
      user: { id: alice.id },
    });

    const event = await toAlice.next();
    expect(event.notificationReceived).toEqual({
      id: n!.id,
      title: 'Deploy finished',
      message: 'v2 is live',
      type: 'STATUS',
      channel: 'WEB',
      status: 'UNREAD',
      user: { id: alice.id },
    });
    // The sentinel: a notification of their own, sent after Alice's, must be the first that Bob and the admin hear.
    await send({ userIds: [bob.id, admin.id], title: 'Sentinel' });
    for (const sub of [toBob, toAdmin]) expect((await sub.next()).notificationReceived.title).toBe('Sentinel');
    expect([toBob.received.length, toAdmin.received.length]).toEqual([1, 1]);
    expect(toAlice.received).toHaveLength(1);
  });

  it('holds a notification scheduled for later until it is due, then delivers it live', async () => {
    const alice = await createUser(s, admin);
    const listeners = busListeners(s);
    const toAlice = live(alice);
    await listeners.registered();

    const [n] = await send({
      userIds: [alice.id],
      title: 'Stand-up in 10 minutes',
      scheduledFor: new Date(Date.now() + 3600_000).toISOString(),
    });
    expect(n).toMatchObject({ deliveryStatus: 'PENDING', sentAt: null });

    await deliver();
    expect(await delivery(n!.id)).toMatchObject({ delivery_status: 'PENDING', delivery_attempts: 0 });
    expect(await ids(alice)).not.toContain(n!.id);
    expect(await unread(alice)).toBe(0);
    // The sentinel: one sent now must be the first Alice hears, not the one held for later.
    const [now] = await send({ userIds: [alice.id], title: 'Sentinel' });
    expect((await toAlice.next()).notificationReceived).toMatchObject({ id: now!.id, title: 'Sentinel' });

    await makeDue(n!.id);
    await deliver();
    expect((await toAlice.next()).notificationReceived).toMatchObject({ id: n!.id, title: 'Stand-up in 10 minutes' });
    expect(await delivery(n!.id)).toMatchObject({ delivery_status: 'SENT', delivery_attempts: 1 });
    expect((await ids(alice)).sort()).toEqual([n!.id, now!.id].sort());
    expect(await unread(alice)).toBe(2);

    // Delivered once: another run sends nothing again, so the next sentinel comes next.
    await deliver();
    await send({ userIds: [alice.id], title: 'Sentinel 2' });
    expect((await toAlice.next()).notificationReceived.title).toBe('Sentinel 2');
    expect(toAlice.received).toHaveLength(3);
  });
});

describe('delivery by e-mail and webhook', () => {
  it('e-mails the user over SMTP, retrying after the server refused the first attempt', async () => {
    const alice = await createUser(s, admin);
    const title = `Weekly report ${unique()}`;
    smtp.refuse(title, 1);
    const [n] = await send({
      userIds: [alice.id],
      title,
      message: 'All 12 tasks completed.',
      channel: 'EMAIL',
      type: 'INFO',
    });
    expect(n).toMatchObject({ deliveryStatus: 'PENDING', deliveryAttempts: 0 });

    await deliver();
    const first = await delivery(n!.id);
    expect(first).toMatchObject({ delivery_status: 'PENDING', delivery_attempts: 1, sent_at: null });
    expect(first.last_delivery_error).toMatch(/451/);
    expect(first.wait).toBeGreaterThan(3);
    expect(first.wait).toBeLessThanOrEqual(5);
    expect(smtp.mailsTitled(title)).toHaveLength(0);

    await deliver(); // not due yet: the backoff holds it
    expect(await delivery(n!.id)).toMatchObject({ delivery_attempts: 1 });

    await makeDue(n!.id);
    await deliver();
    expect(await delivery(n!.id)).toMatchObject({ delivery_status: 'SENT', delivery_attempts: 2 });
    const mails = smtp.mailsTitled(title);
    expect(mails).toHaveLength(1);
    expect(mails[0]!.to).toEqual([alice.email]);
    expect(mails[0]!.raw).toContain('All 12 tasks completed.');

    const [node] = (await list(alice, { channel: 'EMAIL' })).edges.map((e) => e.node);
    expect(node).toMatchObject({ id: n!.id, deliveryStatus: 'SENT', deliveryAttempts: 2 });
    expect(node!.sentAt).not.toBeNull();
  });

  it('POSTs PUSH notifications to the webhook, retrying a 500 with backoff', async () => {
    const alice = await createUser(s, admin);
    const title = `Build broken ${unique()}`;
    webhook.plan(title, [500]);
    const [n] = await send({
      userIds: [alice.id],
      title,
      message: 'main is red',
      channel: 'PUSH',
      type: 'ALERT',
      priority: 'URGENT',
      data: { build: 42 },
    });

    await deliver();
    const first = await delivery(n!.id);
    expect(first).toMatchObject({
      delivery_status: 'PENDING',
      delivery_attempts: 1,
      last_delivery_error: 'webhook answered 500 Internal Server Error',
    });
    expect(first.wait).toBeGreaterThan(3);
    expect(first.wait).toBeLessThanOrEqual(5);

    await makeDue(n!.id);
    await deliver();
    expect(await delivery(n!.id)).toMatchObject({ delivery_status: 'SENT', delivery_attempts: 2 });

    const calls = webhook.requestsFor(title);
    expect(calls).toHaveLength(2);
    expect(calls[1]!.headers['content-type']).toBe('application/json');
    expect(calls[1]!.body).toEqual({
      id: n!.id,
      userId: alice.id,
      channel: 'PUSH',
      title,
      message: 'main is red',
      data: { build: 42 },
      priority: 'URGENT',
    });
  });

  it('marks a notification FAILED after the last attempt, doubling the wait between attempts, and keeps it listed', async () => {
    const alice = await createUser(s, admin);
    const title = `Pager ${unique()}`;
    webhook.plan(title, Array(10).fill(503));
    const [n] = await send({ userIds: [alice.id], title, channel: 'SMS', type: 'ALERT' });

    for (let attempt = 1; attempt < MAX_ATTEMPTS; attempt++) {
      await deliver();
      const row = await delivery(n!.id);
      expect(row).toMatchObject({
        delivery_status: 'PENDING',
        delivery_attempts: attempt,
        last_delivery_error: 'webhook answered 503 Service Unavailable',
      });
      const backoff = 5 * 2 ** (attempt - 1);
      expect(row.wait).toBeGreaterThan(backoff - 2);
      expect(row.wait).toBeLessThanOrEqual(backoff);
      await makeDue(n!.id);
    }
    await deliver();
    expect(await delivery(n!.id)).toMatchObject({
      delivery_status: 'FAILED',
      delivery_attempts: MAX_ATTEMPTS,
      last_delivery_error: 'webhook answered 503 Service Unavailable',
    });

    await makeDue(n!.id);
    await deliver();
    expect(webhook.requestsFor(title)).toHaveLength(MAX_ATTEMPTS);
    expect(await delivery(n!.id)).toMatchObject({ delivery_status: 'FAILED', delivery_attempts: MAX_ATTEMPTS });

    expect(await ids(alice)).toEqual([n!.id]);
    const failed = (await list(alice, { deliveryStatus: ['FAILED'] })).edges.map((e) => e.node);
    expect(failed).toEqual([
      expect.objectContaining({
        id: n!.id,
        deliveryStatus: 'FAILED',
        deliveryAttempts: MAX_ATTEMPTS,
        lastDeliveryError: 'webhook answered 503 Service Unavailable',
      }),
    ]);
    const audited = await s.sql<{ outcome: string; final: string }>(
      `SELECT outcome, after->>'final' AS final FROM audit_events WHERE action = 'notification.deliveryFailed' AND entity_id = $1 ORDER BY created_at`,
      [n!.id],
    );
    expect(audited).toEqual([
      { outcome: 'FAILURE', final: 'false' },
      { outcome: 'FAILURE', final: 'false' },
      { outcome: 'FAILURE', final: 'true' },
    ]);
  });

  it('holds a claimed notification for its lease, retries it when the claiming instance never reported back, and gives up after the last attempt', async () => {
    const alice = await createUser(s, admin);
    const [retried, abandoned] = [`Lease ${unique()}`, `Lease ${unique()}`];
    const [a] = await send({ userIds: [alice.id], title: retried, channel: 'PUSH' });
    const [b] = await send({ userIds: [alice.id], title: abandoned, channel: 'PUSH' });
    // What a claim leaves behind when its instance dies before recording the outcome.
    await s.sql(
      `UPDATE notifications SET delivery_attempts = 1, next_attempt_at = now() + interval '2 minutes' WHERE id = $1`,
      [a!.id],
    );
    await s.sql(
      `UPDATE notifications SET delivery_attempts = $2, next_attempt_at = now() + interval '2 minutes' WHERE id = $1`,
      [b!.id, MAX_ATTEMPTS],
    );

    await deliver();
    expect(webhook.requestsFor(retried)).toHaveLength(0);
    expect(await delivery(a!.id)).toMatchObject({ delivery_status: 'PENDING', delivery_attempts: 1 });

    await makeDue(a!.id);
    await makeDue(b!.id);
    await deliver();
    expect(webhook.requestsFor(retried)).toHaveLength(1);
    expect(await delivery(a!.id)).toMatchObject({ delivery_status: 'SENT', delivery_attempts: 2 });
    expect(webhook.requestsFor(abandoned)).toHaveLength(0);
    const gaveUp = await delivery(b!.id);
    expect(gaveUp).toMatchObject({ delivery_status: 'FAILED', delivery_attempts: MAX_ATTEMPTS });
    expect(gaveUp.last_delivery_error).toMatch(/no outcome was recorded/);
  });

  it('fails EMAIL and PUSH with a clear error when SMTP or the webhook is not configured', async () => {
    const bare = await serverForThisTest({ env: { NOTIFICATION_MAX_ATTEMPTS: '1' } });
    const root = await firstAdmin(bare);
    const [mail] = await send({ userIds: [root.id], title: 'By mail', channel: 'EMAIL' }, root, bare);
    const [push] = await send({ userIds: [root.id], title: 'By push', channel: 'PUSH' }, root, bare);

    const report = await deliver(bare);
    expect(report).toMatchObject({ claimed: 2, sent: 0, failed: 2 });
    expect(await delivery(mail!.id, bare)).toMatchObject({
      delivery_status: 'FAILED',
      delivery_attempts: 1,
      last_delivery_error: 'SMTP_URL is not set: EMAIL notifications cannot be delivered',
    });
    expect(await delivery(push!.id, bare)).toMatchObject({
      delivery_status: 'FAILED',
      delivery_attempts: 1,
      last_delivery_error: 'NOTIFICATION_WEBHOOK_URL is not set: PUSH notifications cannot be delivered',
    });
  });
});

describe('the inbox', () => {
  it('lists your own notifications newest first, with the unread count, page by page', async () => {
    const [alice, bob] = await Promise.all([createUser(s, admin), createUser(s, admin)]);
    const sent = [];
    for (const title of ['one', 'two', 'three']) sent.push((await send({ userIds: [alice.id], title }))[0]!.id);
    const [bobs] = await send({ userIds: [bob.id], title: 'for bob' });

    const page1 = await list(alice, undefined, 2);
    expect(page1.totalCount).toBe(3);
    expect(page1.edges.map((e) => e.node.title)).toEqual(['three', 'two']);
    expect(page1.pageInfo.hasNextPage).toBe(true);
    const page2 = await list(alice, undefined, 2, page1.pageInfo.endCursor!);
    expect(page2.edges.map((e) => e.node.title)).toEqual(['one']);
    expect(page2.pageInfo.hasNextPage).toBe(false);

    expect(await unread(alice)).toBe(3);
    expect(await ids(bob)).toEqual([bobs!.id]);
    expect(await ids(alice)).toEqual([...sent].reverse());
  });

  it('filters by status, type and channel', async () => {
    const alice = await createUser(s, admin);
    const [alert] = await send({ userIds: [alice.id], title: 'alert', type: 'ALERT' });
    const [info] = await send({ userIds: [alice.id], title: 'info', type: 'INFO' });
    const [mail] = await send({ userIds: [alice.id], title: 'mail', type: 'INFO', channel: 'EMAIL' });
    await ok(s.url, MarkNotificationReadDocument, { id: info!.id }, alice.token);

    expect(await ids(alice, { type: 'ALERT' })).toEqual([alert!.id]);
    expect(await ids(alice, { channel: 'EMAIL' })).toEqual([mail!.id]);
    expect(await ids(alice, { status: ['READ'] })).toEqual([info!.id]);
    expect(await ids(alice, { status: ['UNREAD'], type: 'INFO' })).toEqual([mail!.id]);
  });

  it('marks one notification read, then all the rest, counting only what changed', async () => {
    const alice = await createUser(s, admin);
    const created = [];
    for (const title of ['a', 'b', 'c']) created.push((await send({ userIds: [alice.id], title }))[0]!);
    expect(await unread(alice)).toBe(3);

    const read = (await ok(s.url, MarkNotificationReadDocument, { id: created[0]!.id }, alice.token))
      .markNotificationRead;
    expect(read).toMatchObject({ id: created[0]!.id, status: 'READ' });
    expect(read.readAt).not.toBeNull();
    expect(await unread(alice)).toBe(2);
    expect(
      (await ok(s.url, MarkNotificationReadDocument, { id: created[0]!.id }, alice.token)).markNotificationRead.readAt,
    ).toBe(read.readAt);

    expect((await ok(s.url, MarkAllNotificationsReadDocument, {}, alice.token)).markAllNotificationsRead).toBe(2);
    expect(await unread(alice)).toBe(0);
    expect((await ok(s.url, MarkAllNotificationsReadDocument, {}, alice.token)).markAllNotificationsRead).toBe(0);
    expect((await list(alice, { status: ['READ'] })).totalCount).toBe(3);

    const audited = await s.sql<{ action: string; actor_id: string }>(
      `SELECT action, actor_id FROM audit_events WHERE action IN ('notification.read', 'notification.readAll') AND actor_id = $1 ORDER BY created_at`,
      [alice.id],
    );
    expect(audited.map((a) => a.action)).toEqual(['notification.read', 'notification.readAll']);
  });

  it('archives a notification out of the default list, still readable when asked for', async () => {
    const alice = await createUser(s, admin);
    const [keep] = await send({ userIds: [alice.id], title: 'keep' });
    const [old] = await send({ userIds: [alice.id], title: 'old news' });

    expect((await ok(s.url, ArchiveNotificationDocument, { id: old!.id }, alice.token)).archiveNotification).toEqual({
      id: old!.id,
      status: 'ARCHIVED',
    });
    expect(await ids(alice)).toEqual([keep!.id]);
    expect(await ids(alice, { status: ['ARCHIVED'] })).toEqual([old!.id]);
    expect(await unread(alice)).toBe(1);
  });

  it("never shows or changes another user's notification", async () => {
    const [alice, mallory] = await Promise.all([createUser(s, admin), createUser(s, admin)]);
    const [n] = await send({ userIds: [alice.id], title: 'private' });

    expect(await ids(mallory)).toEqual([]);
    expect(await ids(mallory, { status: ['UNREAD', 'READ', 'ARCHIVED'] })).toEqual([]);
    expect(codes(await gql(s.url, MarkNotificationReadDocument, { id: n!.id }, mallory.token))).toEqual(['NOT_FOUND']);
    expect(codes(await gql(s.url, ArchiveNotificationDocument, { id: n!.id }, mallory.token))).toEqual(['NOT_FOUND']);
    expect(codes(await gql(s.url, MarkNotificationReadDocument, { id: n!.id }, admin.token))).toEqual(['NOT_FOUND']);
    expect(codes(await gql(s.url, MarkNotificationReadDocument, { id: 'not-an-id' }, mallory.token))).toEqual([
      'BAD_USER_INPUT',
    ]);
    expect((await ok(s.url, MarkAllNotificationsReadDocument, {}, mallory.token)).markAllNotificationsRead).toBe(0);

    expect((await list(alice)).edges.map((e) => e.node)).toEqual([
      expect.objectContaining({ id: n!.id, status: 'UNREAD', readAt: null }),
    ]);
  });

  it('lets an observer read and mark its own notifications', async () => {
    const observer = await createUser(s, admin, 'OBSERVER');
    const [a] = await send({ userIds: [observer.id], title: 'a' });
    const [b] = await send({ userIds: [observer.id], title: 'b' });
    await send({ userIds: [observer.id], title: 'c' });

    expect(await unread(observer)).toBe(3);
    expect(
      (await ok(s.url, MarkNotificationReadDocument, { id: a!.id }, observer.token)).markNotificationRead.status,
    ).toBe('READ');
    expect(
      (await ok(s.url, ArchiveNotificationDocument, { id: b!.id }, observer.token)).archiveNotification.status,
    ).toBe('ARCHIVED');
    expect((await ok(s.url, MarkAllNotificationsReadDocument, {}, observer.token)).markAllNotificationsRead).toBe(1);
    expect(await unread(observer)).toBe(0);
  });
});

describe('sending by hand', () => {
  it('is for administrators only', async () => {
    const [user, observer] = await Promise.all([createUser(s, admin), createUser(s, admin, 'OBSERVER')]);
    const input = { userIds: [user.id], title: 'hello' };
    expect(codes(await gql(s.url, SendNotificationDocument, { input }, user.token))).toEqual(['FORBIDDEN']);
    expect(codes(await gql(s.url, SendNotificationDocument, { input }, observer.token))).toEqual(['FORBIDDEN']);
    expect(codes(await gql(s.url, SendNotificationDocument, { input }))).toEqual(['UNAUTHENTICATED']);
    expect(codes(await gql(s.url, NotificationsDocument, {}))).toEqual(['UNAUTHENTICATED']);
    expect(await ids(user)).toEqual([]);
  });

  it('sends one notification per distinct user, audited, and nothing when a recipient does not exist', async () => {
    const [alice, bob] = await Promise.all([createUser(s, admin), createUser(s, admin)]);
    const sent = await send({
      userIds: [alice.id, bob.id, alice.id],
      title: 'Maintenance tonight',
      type: 'INFO',
      priority: 'LOW',
    });
    expect(sent.map((n) => n.user.id).sort()).toEqual([alice.id, bob.id].sort());
    expect(sent.every((n) => n.priority === 'LOW' && n.type === 'INFO' && n.channel === 'WEB')).toBe(true);
    const audited = await s.sql(
      `SELECT entity_id FROM audit_events WHERE action = 'notification.send' AND actor_id = $1 AND entity_id = ANY($2)`,
      [admin.id, sent.map((n) => n.id)],
    );
    expect(audited).toHaveLength(2);

    const ghost = '00000000-0000-4000-8000-000000000000';
    const r = await gql(
      s.url,
      SendNotificationDocument,
      { input: { userIds: [alice.id, ghost], title: 'to nobody' } },
      admin.token,
    );
    expect(codes(r)).toEqual(['NOT_FOUND']);
    expect((await list(alice)).edges.map((e) => e.node.title)).toEqual(['Maintenance tonight']);
    expect(
      codes(await gql(s.url, SendNotificationDocument, { input: { userIds: [], title: 'empty' } }, admin.token)),
    ).toEqual(['BAD_USER_INPUT']);
  });
});
