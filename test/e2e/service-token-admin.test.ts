import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { CreateServiceTokenDocument } from '../generated/graphql.js';
import { codes, gql, ok } from '../support/client.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, unique, type TestUser } from '../support/users.js';

/**
 * A service token an administrator created carries the administrator's role, but it is not
 * a person: where a rule gives admins everyone's rows, the token gets none of that reach.
 */
let s: TestServer;
let admin: TestUser;
let user: TestUser;
let serviceToken: string;
beforeAll(async () => {
  s = await startTestServer();
  admin = await firstAdmin(s);
  user = await createUser(s, admin);
  serviceToken = (
    await ok(
      s.url,
      CreateServiceTokenDocument,
      {
        input: {
          name: unique('agent-'),
          serviceActor: 'agent:senior-engineer',
          expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
          scopes: ['read', 'write'],
        },
      },
      admin.token,
    )
  ).createServiceToken.token;
  // One real AI call of the user's (the built-in LOCAL provider): a prompt log row that is not the admin's.
  const started = await ok(s.url, `mutation { startConversation(input: {}) { id } }`, {}, user.token);
  await ok(
    s.url,
    `mutation($input: SendMessageInput!) { sendMessage(input: $input) { id } }`,
    { input: { conversationId: started.startConversation.id, content: 'Review this code' } },
    user.token,
  );
  // A cost alert of the user's, as the metered pipeline writes it (metering.test.ts fires real ones).
  const [alert] = await s.sql<{ id: string }>(
    `INSERT INTO cost_alerts (id, user_id, alert_type, threshold_percentage, period_start, spent_usd, limit_usd)
     VALUES (gen_random_uuid(), $1, 'DAILY_80', 80, date_trunc('day', now()), 0.8, 1) RETURNING id`,
    [user.id],
  );
  alertId = alert!.id;
});
afterAll(() => s?.close());
let alertId: string;

const PROMPT_LOGS = `query($where: PromptLogWhere) { promptLogs(first: 10, where: $where) { edges { node { id } } } }`;
const COST_ALERTS = `{ costAlerts(first: 10) { edges { node { id } } } }`;

describe('a service token of an administrator', () => {
  it("is refused the operations that show admins everyone's usage, over HTTP", async () => {
    expect(codes(await gql(s.url, PROMPT_LOGS, { where: { userId: user.id } }, serviceToken))).toEqual(['FORBIDDEN']);
    expect(codes(await gql(s.url, COST_ALERTS, {}, serviceToken))).toEqual(['FORBIDDEN']);
    expect(
      codes(
        await gql(
          s.url,
          `{ approvals(first: 10, where: { awaitingMe: true }) { edges { node { id } } } }`,
          {},
          serviceToken,
        ),
      ),
    ).toEqual(['FORBIDDEN']);
    // A human admin is let in and sees the user's call: the refusal is the token's, not the query's.
    const seen = await ok(s.url, PROMPT_LOGS, { where: { userId: user.id } }, admin.token);
    expect(seen.promptLogs.edges).toHaveLength(1);
  });

  it('gets no admin reach from the billing rules themselves, should an operation ever let it through', async () => {
    const { authenticator, billing } = s.app.runtime.services;
    const tokenViewer = await authenticator.fromAuthorization(`Bearer ${serviceToken}`);
    const humanViewer = await authenticator.fromAuthorization(`Bearer ${admin.token}`);
    expect(tokenViewer).toMatchObject({ role: 'ADMIN', serviceActor: 'agent:senior-engineer' });

    const asToken = await billing.promptLogs(tokenViewer!, ['id'], { userId: user.id }, { first: 10 });
    const asHuman = await billing.promptLogs(humanViewer!, ['id'], { userId: user.id }, { first: 10 });
    expect(asHuman.edges).toHaveLength(1);
    expect(asToken.edges).toHaveLength(0);

    const alertsAsToken = await billing.costAlerts(tokenViewer!, ['id'], false, { first: 10 });
    const alertsAsHuman = await billing.costAlerts(humanViewer!, ['id'], false, { first: 10 });
    expect(alertsAsHuman.edges.map((e) => e.node.id)).toContain(alertId);
    expect(alertsAsToken.edges.map((e) => e.node.id)).not.toContain(alertId);
    expect(billing.hearsCostAlert(tokenViewer!, { alertId, userId: user.id } as never)).toBe(false);
    expect(billing.hearsCostAlert(humanViewer!, { alertId, userId: user.id } as never)).toBe(true);
    // Acknowledging someone else's alert: NOT_FOUND for the token, as for any non-admin.
    const scope = {
      em: s.app.runtime.orm.em.fork(),
      viewer: tokenViewer,
      meta: { requestId: 'test', ip: null, userAgent: null },
    } as never;
    await expect(billing.acknowledgeCostAlert(scope, tokenViewer!, alertId)).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    const [row] = await s.sql<{ acknowledged: boolean }>(`SELECT acknowledged FROM cost_alerts WHERE id = $1`, [
      alertId,
    ]);
    expect(row!.acknowledged).toBe(false);
  });

  it("gets no admin reach from the usage report's rules either", async () => {
    const { authenticator, usageReports } = s.app.runtime.services;
    const tokenViewer = await authenticator.fromAuthorization(`Bearer ${serviceToken}`);
    const humanViewer = await authenticator.fromAuthorization(`Bearer ${admin.token}`);
    const count = async (viewer: typeof tokenViewer) => {
      const where = usageReports.visibleCalls(viewer!, 'p');
      const [row] = await s.sql<{ n: number }>(
        `SELECT count(*)::int AS n FROM prompt_logs p WHERE p.user_id = $1 AND ${where.text.replace(/\$(\d+)/g, (_, i) => `$${Number(i) + 1}`)}`,
        [user.id, ...where.values],
      );
      return row!.n;
    };
    expect(await count(humanViewer)).toBe(1);
    expect(await count(tokenViewer)).toBe(0);
    // A bulk recording (no user list) is announced to admins only: not to the token.
    const bulk = { userIds: null, projectIds: [] } as never;
    const scope = { once: (_key: string, fn: () => unknown) => fn() } as never;
    expect(await usageReports.hears(bulk, humanViewer!, scope)).toBe(true);
    expect(await usageReports.hears(bulk, tokenViewer!, scope)).toBe(false);
  });
});
