import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  ApproveApprovalDocument,
  MeDocument,
  NotificationReceivedDocument,
  SendNotificationDocument,
} from '../generated/graphql.js';
import { codes, gql, ok, subscribe, wsClient, wsExecute } from '../support/client.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';
import { scrapeMetrics } from '../support/metrics.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { firstAdmin, type TestUser } from '../support/users.js';
import { busListeners, until } from '../support/wait.js';

let s: TestServer;
let admin: TestUser;
let fake: FakeOpenAI;
beforeAll(async () => {
  fake = await startFakeOpenAI();
  s = await startTestServer({ env: { AI_PROVIDER_FALLBACK: 'false' } });
  admin = await firstAdmin(s);
});
afterAll(async () => {
  await s?.close();
  await fake?.close();
});

const scrape = () => scrapeMetrics(s);

describe('GET /metrics', () => {
  it('serves Prometheus text without GraphQL auth, with the default Node metrics and the pool', async () => {
    const m = await scrape();
    expect(m.text).toContain('steward_process_cpu_user_seconds_total');
    expect(m.text).toContain('steward_nodejs_eventloop_lag_seconds');
    expect(m.text).toMatch(/steward_db_pool_connections\{state="total"\} \d+/);
    expect(m.text).toMatch(/steward_db_pool_connections\{state="waiting"\} 0/);
  });

  it('shows the figures change after a query, a failing mutation and a subscription over WebSocket', async () => {
    const before = await scrape();

    await ok(s.url, MeDocument, {}, admin.token);
    await ok(s.url, MeDocument, {}, admin.token);
    await gql(s.url, '{ __typename }');
    const failed = await gql(
      s.url,
      ApproveApprovalDocument,
      { input: { id: '00000000-0000-4000-8000-000000000000' } },
      admin.token,
    );
    const failedCode = codes(failed)[0]!;
    expect(failedCode).toBeTruthy();

    const client = wsClient(s.wsUrl, admin.token);
    const listeners = busListeners(s);
    const sub = subscribe(client, NotificationReceivedDocument);
    await listeners.registered();
    const during = await scrape();
    await ok(s.url, SendNotificationDocument, { input: { userIds: [admin.id], title: 'metrics' } }, admin.token);
    expect((await sub.next()).notificationReceived.title).toBe('metrics');
    // Operations over the WebSocket count as over HTTP.
    expect((await wsExecute(client, MeDocument, {})).data?.me.id).toBe(admin.id);

    const after = await scrape();
    expect(
      after.value('steward_graphql_requests_total', { operation: 'Me' }) -
        before.value('steward_graphql_requests_total', { operation: 'Me' }),
    ).toBe(3);
    expect(
      after.value('steward_graphql_requests_total', { operation: 'NotificationReceived' }) -
        before.value('steward_graphql_requests_total', { operation: 'NotificationReceived' }),
    ).toBe(1);
    expect(after.value('steward_graphql_requests_total', { operation: 'anonymous' })).toBeGreaterThan(
      before.value('steward_graphql_requests_total', { operation: 'anonymous' }),
    );
    expect(
      after.value('steward_graphql_requests_total', { operation: 'ApproveApproval' }) -
        before.value('steward_graphql_requests_total', { operation: 'ApproveApproval' }),
    ).toBe(1);
    expect(
      after.value('steward_graphql_request_duration_seconds_count', { operation: 'Me' }) -
        before.value('steward_graphql_request_duration_seconds_count', { operation: 'Me' }),
    ).toBe(3);
    expect(
      after.value('steward_graphql_errors_total', { code: failedCode }) -
        before.value('steward_graphql_errors_total', { code: failedCode }),
    ).toBe(1);

    expect(before.value('steward_websockets_open')).toBe(0);
    expect(during.value('steward_websockets_open')).toBe(1);
    expect(during.value('steward_subscriptions_active')).toBeGreaterThan(before.value('steward_subscriptions_active'));
    expect(after.value('steward_events_total', { kind: 'published' })).toBeGreaterThan(
      before.value('steward_events_total', { kind: 'published' }),
    );
    expect(after.value('steward_events_total', { kind: 'delivered' })).toBeGreaterThan(
      before.value('steward_events_total', { kind: 'delivered' }),
    );

    sub.dispose();
    await client.dispose();
    await until(async () => (await scrape()).value('steward_websockets_open') === 0, 'the socket closed in the gauge');
  });

  it('counts job runs', async () => {
    const before = await scrape();
    const job = 'work.deliverNotifications';
    await s.app.runtime.scheduler.runNow(job);
    const after = await scrape();
    expect(after.value('steward_job_runs_total', { job }) - before.value('steward_job_runs_total', { job })).toBe(1);
  });

  it('counts AI calls, tokens and spend by provider, and provider failures', async () => {
    const provider = (
      await ok(
        s.url,
        `mutation($input: CreateProviderInput!) { createProvider(input: $input) { id } }`,
        {
          input: {
            name: 'fake-metrics',
            providerType: 'OPENAI',
            modelName: 'gpt-test',
            apiEndpoint: fake.baseURL,
            apiKey: 'sk-metrics-1234',
            inputCostPer1k: '0.002000',
            outputCostPer1k: '0.004000',
            maxTokens: 50,
            timeoutSeconds: 5,
          },
        },
        admin.token,
      )
    ).createProvider;
    const conversation = (
      await ok(
        s.url,
        `mutation($input: StartConversationInput!) { startConversation(input: $input) { id } }`,
        { input: { providerId: provider.id } },
        admin.token,
      )
    ).startConversation;
    const send = (content: string) =>
      gql(
        s.url,
        `mutation($input: SendMessageInput!) { sendMessage(input: $input) { id } }`,
        { input: { conversationId: conversation.id, content } },
        admin.token,
      );
    const labels = { provider: 'fake-metrics' };
    const before = await scrape();

    fake.script({ usage: { prompt_tokens: 1000, completion_tokens: 500 } });
    expect((await send('Summarise the release notes')).errors).toBeUndefined();
    fake.script({ status: 500, message: 'the model is down' });
    expect(codes(await send('And again'))).toHaveLength(1);

    const after = await scrape();
    const delta = (name: string, l: Record<string, string>) => after.value(name, l) - before.value(name, l);
    expect(delta('steward_ai_calls_total', { ...labels, status: 'success' })).toBe(1);
    expect(delta('steward_ai_calls_total', { ...labels, status: 'error' })).toBe(1);
    expect(delta('steward_ai_tokens_total', { ...labels, direction: 'input' })).toBe(1000);
    expect(delta('steward_ai_tokens_total', { ...labels, direction: 'output' })).toBe(500);
    // 1000 × $0.002/1k + 500 × $0.004/1k = $0.004
    expect(delta('steward_ai_spend_dollars_total', labels)).toBeCloseTo(0.004, 9);
  });
});
