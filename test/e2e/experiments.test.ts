import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  AddProjectMemberDocument,
  ApproveApprovalDocument,
  AttachPolicyDocument,
  BaselinesDocument,
  CreateExperimentDocument,
  CreatePolicyDocument,
  CreateProjectDocument,
  DecideReevaluationDocument,
  DegradeVersionDocument,
  ExperimentDocument,
  ExperimentStatusChangedDocument,
  OverrideEvaluationDocument,
  ProjectPoliciesDocument,
  ProjectVersionsDocument,
  PromotionsDocument,
  ProposePromotionDocument,
  QuarantineExperimentDocument,
  QuarantineRecordsDocument,
  RejectApprovalDocument,
  RequestReevaluationDocument,
  SetBaselineDocument,
  SetExperimentStatusDocument,
  SetPolicyActiveDocument,
  SubmitEvaluationDocument,
  UpdateVersionDocument,
  VersionHistoryDocument,
  type ExperimentStatus,
} from '../generated/graphql.js';
import { codes, gql, ok, subscribe, wsClient } from '../support/client.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, unique, type TestUser } from '../support/users.js';
import { busListeners } from '../support/wait.js';

let s: TestServer;
let admin: TestUser;
beforeAll(async () => {
  s = await startTestServer();
  admin = await firstAdmin(s);
});
afterAll(() => s?.close());

const sha256 = (t: string) => createHash('sha256').update(t).digest('hex');

/** A project owned by a fresh user, with baselines accuracy >= 0.8 and latency_ms <= 500. */
async function lab(server = () => s, by = () => admin) {
  const owner = await createUser(server(), by());
  const project = (await ok(server().url, CreateProjectDocument, { input: { name: unique('lab-') } }, owner.token))
    .createProject;
  await ok(
    server().url,
    SetBaselineDocument,
    { input: { projectId: project.id, metricKey: 'accuracy', threshold: '0.8', operator: 'GTE' } },
    owner.token,
  );
  await ok(
    server().url,
    SetBaselineDocument,
    { input: { projectId: project.id, metricKey: 'latency_ms', threshold: '500', operator: 'LTE' } },
    owner.token,
  );
  return { owner, projectId: project.id as string };
}

/** An experiment taken to COMPLETED. */
async function completed(owner: TestUser, projectId: string, config: Record<string, unknown>, url = s.url) {
  const e = (
    await ok(
      url,
      CreateExperimentDocument,
      { input: { projectId, name: unique('exp-'), config, datasetId: 'ds-2026-11' } },
      owner.token,
    )
  ).createExperiment;
  for (const status of ['RUNNING', 'COMPLETED'] as ExperimentStatus[])
    await ok(url, SetExperimentStatusDocument, { input: { id: e.id, status } }, owner.token);
  return e;
}
const evaluate = (owner: TestUser, experimentId: string, metrics: Record<string, number>, url = s.url) =>
  ok(url, SubmitEvaluationDocument, { input: { experimentId, metrics } }, owner.token).then((r) => r.submitEvaluation);
const experiment = (u: TestUser, id: string) =>
  ok(s.url, ExperimentDocument, { id }, u.token).then((r) => r.experiment!);
const versions = (u: TestUser, projectId: string) =>
  ok(s.url, ProjectVersionsDocument, { projectId }, u.token).then((r) =>
    Object.fromEntries(r.projectVersions.map((v) => [v.tag, v])),
  );
const history = (u: TestUser, projectId: string) =>
  ok(s.url, VersionHistoryDocument, { projectId, first: 50 }, u.token).then((r) =>
    r.versionHistory.edges.map((e) => e.node),
  );
const audited = (action: string, entityId: string) =>
  s
    .sql<{ n: number }>(`SELECT count(*)::int AS n FROM audit_events WHERE action = $1 AND entity_id = $2`, [
      action,
      entityId,
    ])
    .then((r) => r[0]!.n);

describe('versions and baselines', () => {
  it('gives every project V1, V2 and V3 on first use, and records every change in the history', async () => {
    const { owner, projectId } = await lab();
    const v = await versions(owner, projectId);
    expect(Object.keys(v).sort()).toEqual(['V1', 'V2', 'V3']);
    expect(v.V2).toMatchObject({ modelConfig: {}, configHash: null, metrics: null });

    const updated = (
      await ok(
        s.url,
        UpdateVersionDocument,
        {
          input: {
            projectId,
            tag: 'V1',
            modelConfig: { model: 'gpt-x', temperature: 0.2 },
            changelog: 'first model',
            reason: 'bootstrap',
          },
        },
        owner.token,
      )
    ).updateVersion;
    expect(updated).toMatchObject({
      tag: 'V1',
      modelConfig: { model: 'gpt-x', temperature: 0.2 },
      changelog: 'first model',
      configHash: sha256('{"model":"gpt-x","temperature":0.2}'),
    });
    expect(await history(owner, projectId)).toEqual([
      expect.objectContaining({
        action: 'UPDATED',
        fromTag: 'V1',
        toTag: 'V1',
        reason: 'bootstrap',
        actor: { id: owner.id },
      }),
    ]);

    const bl = (await ok(s.url, BaselinesDocument, { projectId }, owner.token)).baselines;
    expect(bl.map((b) => [b.metricKey, b.operator, b.threshold, b.active])).toEqual([
      ['accuracy', 'GTE', '0.800000', true],
      ['latency_ms', 'LTE', '500.000000', true],
    ]);
  });

  it('refuses version and baseline changes to a viewer, and hides the project from strangers', async () => {
    const { owner, projectId } = await lab();
    const viewer = await createUser(s, admin);
    const stranger = await createUser(s, admin);
    await ok(s.url, AddProjectMemberDocument, { input: { projectId, userId: viewer.id, role: 'VIEWER' } }, owner.token);
    expect(
      codes(
        await gql(
          s.url,
          SetBaselineDocument,
          { input: { projectId, metricKey: 'f1', threshold: '0.5', operator: 'GT' } },
          viewer.token,
        ),
      ),
    ).toEqual(['FORBIDDEN']);
    expect(
      codes(await gql(s.url, UpdateVersionDocument, { input: { projectId, tag: 'V2', reason: 'x' } }, viewer.token)),
    ).toEqual(['FORBIDDEN']);
    expect(codes(await gql(s.url, ProjectVersionsDocument, { projectId }, stranger.token))).toEqual(['NOT_FOUND']);
  });
});

describe('experiment → evaluation → promotion', () => {
  it('walks an experiment to V2: canonical config hash, status machine, PASS verdict, approved promotion, history and report', async () => {
    const { owner, projectId } = await lab();
    const maintainer = await createUser(s, admin);
    await ok(
      s.url,
      AddProjectMemberDocument,
      { input: { projectId, userId: maintainer.id, role: 'MAINTAINER' } },
      owner.token,
    );
    const listeners = busListeners(s);
    const ws = wsClient(s.wsUrl, owner.token);
    const events = subscribe(ws, ExperimentStatusChangedDocument, { projectId });
    await listeners.registered(1);
    try {
      const config = { temperature: 0.3, model: 'gpt-x', prompt: { system: 'be terse', few_shot: 2 } };
      const e = (
        await ok(
          s.url,
          CreateExperimentDocument,
          { input: { projectId, name: 'terse', config, datasetId: 'ds-1' } },
          owner.token,
        )
      ).createExperiment;
      expect(e.status).toBe('CREATED');
      expect(e.configHash).toBe(
        sha256('{"model":"gpt-x","prompt":{"few_shot":2,"system":"be terse"},"temperature":0.3}'),
      );

      // Invalid transitions are refused.
      const skip = await gql(
        s.url,
        SetExperimentStatusDocument,
        { input: { id: e.id, status: 'COMPLETED' } },
        owner.token,
      );
      expect(codes(skip)).toEqual(['BAD_USER_INPUT']);
      expect(
        codes(await gql(s.url, SetExperimentStatusDocument, { input: { id: e.id, status: 'PROMOTED' } }, owner.token)),
      ).toEqual(['BAD_USER_INPUT']);
      expect(
        codes(
          await gql(
            s.url,
            SubmitEvaluationDocument,
            { input: { experimentId: e.id, metrics: { accuracy: 0.9 } } },
            owner.token,
          ),
        ),
      ).toEqual(['BAD_USER_INPUT']);
      await ok(s.url, SetExperimentStatusDocument, { input: { id: e.id, status: 'RUNNING' } }, owner.token);
      await ok(s.url, SetExperimentStatusDocument, { input: { id: e.id, status: 'COMPLETED' } }, owner.token);

      const ev = await evaluate(owner, e.id, { accuracy: 0.93, latency_ms: 320 });
      expect(ev).toMatchObject({
        aiVerdict: 'PASS',
        verdict: 'PASS',
        humanOverride: null,
        policyOutcome: 'NOT_EVALUATED',
      });
      expect(ev.confidence).toBeGreaterThanOrEqual(0.6);
      expect(ev.policyResults).toMatchObject({ reason: expect.stringContaining('not evaluated') });
      expect((await experiment(owner, e.id)).status).toBe('EVALUATING');

      const p = (
        await ok(
          s.url,
          ProposePromotionDocument,
          { input: { experimentId: e.id, reason: 'better and faster' } },
          owner.token,
        )
      ).proposePromotion;
      expect(p).toMatchObject({
        status: 'PENDING',
        fromTag: 'V1',
        toTag: 'V2',
        approval: { status: 'PENDING', actionType: 'experiment.promote' },
        requestedBy: { id: owner.id },
      });
      expect(codes(await gql(s.url, ProposePromotionDocument, { input: { experimentId: e.id } }, owner.token))).toEqual(
        ['CONFLICT'],
      );
      // Nothing has changed while the approval waits; the requester cannot decide it.
      expect((await versions(owner, projectId)).V2!.configHash).toBeNull();
      expect(codes(await gql(s.url, ApproveApprovalDocument, { input: { id: p.approval.id } }, owner.token))).toEqual([
        'FORBIDDEN',
      ]);

      await ok(s.url, ApproveApprovalDocument, { input: { id: p.approval.id, notes: 'ship it' } }, maintainer.token);

      const v = await versions(owner, projectId);
      expect(v.V2).toMatchObject({
        modelConfig: config,
        configHash: e.configHash,
        metrics: { accuracy: 0.93, latency_ms: 320 },
        promotedBy: { id: maintainer.id },
      });
      expect(v.V1!.configHash).toBeNull(); // V1 itself is untouched
      expect(await history(owner, projectId)).toEqual([
        expect.objectContaining({
          action: 'PROMOTED',
          fromTag: 'V1',
          toTag: 'V2',
          reason: 'better and faster',
          configHash: e.configHash,
          actor: { id: maintainer.id },
        }),
      ]);
      expect((await experiment(owner, e.id)).status).toBe('PROMOTED');
      const promos = (await ok(s.url, PromotionsDocument, { projectId }, owner.token)).promotions.edges.map(
        (x) => x.node,
      );
      expect(promos).toEqual([
        expect.objectContaining({ id: p.id, status: 'APPROVED', approval: { id: p.approval.id, status: 'APPROVED' } }),
      ]);
      const report = promos[0]!.comparisonReport!;
      // The first promotion has no V2 metrics to compare with.
      expect(report).toMatchObject({
        recommendation: 'PROMOTE',
        confidence: 0.5,
        experiment: { id: e.id },
        version: { tag: 'V2' },
      });
      expect(await audited('promotion.approved', p.id)).toBe(1);

      // The next promotion is compared with the current V2: better accuracy, worse latency, better... a tie promotes.
      const e2 = await completed(owner, projectId, { model: 'gpt-y' });
      await evaluate(owner, e2.id, { accuracy: 0.95, latency_ms: 450 });
      const p2 = (await ok(s.url, ProposePromotionDocument, { input: { experimentId: e2.id } }, owner.token))
        .proposePromotion;
      await ok(s.url, ApproveApprovalDocument, { input: { id: p2.approval.id } }, admin.token);
      const r2 = (await ok(s.url, PromotionsDocument, { projectId }, owner.token)).promotions.edges.find(
        (x) => x.node.id === p2.id,
      )!.node.comparisonReport!;
      expect(r2.metrics).toEqual([
        { metric: 'accuracy', experiment: 0.95, current: 0.93, delta: 0.02, better: true },
        { metric: 'latency_ms', experiment: 450, current: 320, delta: 130, better: false },
      ]);
      expect(r2).toMatchObject({ recommendation: 'PROMOTE', confidence: 0.5 });

      // Status changes reached the project's subscriber, in order.
      const seen: string[] = [];
      while (seen.length < 5) seen.push((await events.next()).experimentStatusChanged.status);
      expect(seen).toEqual(['CREATED', 'RUNNING', 'COMPLETED', 'EVALUATING', 'PROMOTED']);
    } finally {
      events.dispose();
      await ws.dispose();
    }
  });

  it('changes nothing when the promotion is rejected', async () => {
    const { owner, projectId } = await lab();
    const e = await completed(owner, projectId, { model: 'm' });
    await evaluate(owner, e.id, { accuracy: 0.99, latency_ms: 100 });
    const p = (await ok(s.url, ProposePromotionDocument, { input: { experimentId: e.id } }, owner.token))
      .proposePromotion;
    await ok(s.url, RejectApprovalDocument, { input: { id: p.approval.id, notes: 'not now' } }, admin.token);
    expect((await versions(owner, projectId)).V2).toMatchObject({ configHash: null, modelConfig: {} });
    expect(await history(owner, projectId)).toEqual([]);
    expect((await experiment(owner, e.id)).status).toBe('EVALUATING');
    expect((await ok(s.url, PromotionsDocument, { projectId }, owner.token)).promotions.edges[0]!.node).toMatchObject({
      status: 'REJECTED',
      comparisonReport: null,
    });
  });

  it('promotes only a PASS, asks for manual review when a metric is missing, and lets a maintainer override with a reason', async () => {
    const { owner, projectId } = await lab();
    const e = await completed(owner, projectId, { model: 'partial' });
    const ev = await evaluate(owner, e.id, { accuracy: 0.95 });
    expect(ev).toMatchObject({ aiVerdict: 'MANUAL_REVIEW', confidence: 0 });
    expect(ev.checks).toContainEqual(expect.objectContaining({ metric: 'latency_ms', value: null, holds: null }));
    expect(codes(await gql(s.url, ProposePromotionDocument, { input: { experimentId: e.id } }, owner.token))).toEqual([
      'BAD_USER_INPUT',
    ]);

    const o = (
      await ok(
        s.url,
        OverrideEvaluationDocument,
        { input: { evaluationId: ev.id, verdict: 'PASS', reason: 'latency measured offline: 210 ms' } },
        owner.token,
      )
    ).overrideEvaluation;
    expect(o).toMatchObject({
      aiVerdict: 'MANUAL_REVIEW',
      humanOverride: 'PASS',
      verdict: 'PASS',
      overrideReason: 'latency measured offline: 210 ms',
      overriddenBy: { id: owner.id },
    });
    expect(await audited('evaluation.override', ev.id)).toBe(1);
    expect(
      (await ok(s.url, ProposePromotionDocument, { input: { experimentId: e.id } }, owner.token)).proposePromotion
        .status,
    ).toBe('PENDING');
  });

  it('calls a verdict that sits on its threshold low-confidence: MANUAL_REVIEW', async () => {
    const { owner, projectId } = await lab();
    const e = await completed(owner, projectId, { model: 'borderline' });
    const ev = await evaluate(owner, e.id, { accuracy: 0.801, latency_ms: 100 });
    expect(ev.aiVerdict).toBe('MANUAL_REVIEW');
    expect(ev.confidence).toBeLessThan(0.6);
  });

  it('degrades V2 to V3 with a reason', async () => {
    const { owner, projectId } = await lab();
    expect(
      codes(await gql(s.url, DegradeVersionDocument, { input: { projectId, reason: 'nothing there' } }, owner.token)),
    ).toEqual(['CONFLICT']);
    await ok(
      s.url,
      UpdateVersionDocument,
      { input: { projectId, tag: 'V2', modelConfig: { model: 'prod' }, reason: 'manual' } },
      owner.token,
    );
    const v3 = (
      await ok(
        s.url,
        DegradeVersionDocument,
        { input: { projectId, reason: 'hallucinations in production' } },
        owner.token,
      )
    ).degradeVersion;
    expect(v3).toMatchObject({ tag: 'V3', modelConfig: { model: 'prod' }, configHash: sha256('{"model":"prod"}') });
    expect((await versions(owner, projectId)).V2).toMatchObject({ modelConfig: {}, configHash: null });
    expect((await history(owner, projectId))[0]).toMatchObject({
      action: 'DEGRADED',
      fromTag: 'V2',
      toTag: 'V3',
      reason: 'hallucinations in production',
    });
  });
});

describe('quarantine and re-evaluation', () => {
  it('quarantines a failing config, refuses to re-run it, and allows it again once an admin approves a re-evaluation', async () => {
    const { owner, projectId } = await lab();
    const config = { model: 'gpt-x', temperature: 1.5 };
    const e = await completed(owner, projectId, config);
    const ev = await evaluate(owner, e.id, { accuracy: 0.41, latency_ms: 200 });
    expect(ev).toMatchObject({ aiVerdict: 'FAIL', verdict: 'FAIL' });
    expect((await experiment(owner, e.id)).status).toBe('QUARANTINED');

    const records = (
      await ok(s.url, QuarantineRecordsDocument, { projectId }, owner.token)
    ).quarantineRecords.edges.map((x) => x.node);
    expect(records).toHaveLength(1);
    const record = records[0]!;
    expect(record).toMatchObject({
      configHash: e.configHash,
      status: 'QUARANTINED',
      experiment: { id: e.id },
      failureMetrics: { accuracy: { value: 0.41, operator: 'GTE', threshold: 0.8 } },
      evidence: { evaluationId: ev.id },
    });

    // The same config, keys in another order, is refused with an error naming the record.
    const again = await gql(
      s.url,
      CreateExperimentDocument,
      { input: { projectId, name: 'retry', config: { temperature: 1.5, model: 'gpt-x' }, datasetId: 'ds-1' } },
      owner.token,
    );
    expect(codes(again)).toEqual(['CONFLICT']);
    expect(again.errors![0]!.message).toContain(record.id);

    const req = (
      await ok(
        s.url,
        RequestReevaluationDocument,
        { input: { quarantineRecordId: record.id, reason: 'dataset had label noise; fixed' } },
        owner.token,
      )
    ).requestReevaluation;
    expect(req.status).toBe('PENDING');
    expect(
      codes(
        await gql(
          s.url,
          CreateExperimentDocument,
          { input: { projectId, name: 'retry', config, datasetId: 'ds-1' } },
          owner.token,
        ),
      ),
    ).toEqual(['CONFLICT']);
    // Only an admin decides.
    expect(
      codes(await gql(s.url, DecideReevaluationDocument, { input: { id: req.id, approve: true } }, owner.token)),
    ).toEqual(['FORBIDDEN']);
    const decided = (
      await ok(
        s.url,
        DecideReevaluationDocument,
        { input: { id: req.id, approve: true, notes: 'go ahead' } },
        admin.token,
      )
    ).decideReevaluation;
    expect(decided).toMatchObject({ status: 'APPROVED', notes: 'go ahead', decidedBy: { id: admin.id } });
    expect(
      codes(await gql(s.url, DecideReevaluationDocument, { input: { id: req.id, approve: false } }, admin.token)),
    ).toEqual(['CONFLICT']);

    const after = (await ok(s.url, QuarantineRecordsDocument, { projectId }, owner.token)).quarantineRecords.edges[0]!
      .node;
    expect(after).toMatchObject({
      status: 'APPROVED_RETRY',
      reevaluationRequests: [
        { id: req.id, status: 'APPROVED', requestedBy: { id: owner.id }, decidedBy: { id: admin.id } },
      ],
    });
    const rerun = (
      await ok(
        s.url,
        CreateExperimentDocument,
        { input: { projectId, name: 'retry', config, datasetId: 'ds-2' } },
        owner.token,
      )
    ).createExperiment;
    expect(rerun.configHash).toBe(e.configHash);
    expect(await audited('reevaluation.approve', record.id)).toBe(1);

    // Failing again puts the same record back in quarantine.
    await ok(s.url, SetExperimentStatusDocument, { input: { id: rerun.id, status: 'RUNNING' } }, owner.token);
    await ok(s.url, SetExperimentStatusDocument, { input: { id: rerun.id, status: 'COMPLETED' } }, owner.token);
    await evaluate(owner, rerun.id, { accuracy: 0.5, latency_ms: 200 });
    const twice = (await ok(s.url, QuarantineRecordsDocument, { projectId }, owner.token)).quarantineRecords;
    expect(twice.totalCount).toBe(1);
    expect(twice.edges[0]!.node).toMatchObject({ id: record.id, status: 'QUARANTINED', experiment: { id: rerun.id } });
  });

  it('keeps the block when the re-evaluation is rejected, and lets an admin quarantine an evaluating experiment', async () => {
    const { owner, projectId } = await lab();
    const e = await completed(owner, projectId, { model: 'suspicious' });
    await evaluate(owner, e.id, { accuracy: 0.95, latency_ms: 100 });
    expect(
      codes(
        await gql(
          s.url,
          QuarantineExperimentDocument,
          { input: { experimentId: e.id, reason: 'leaks PII' } },
          owner.token,
        ),
      ),
    ).toEqual(['FORBIDDEN']);
    const record = (
      await ok(
        s.url,
        QuarantineExperimentDocument,
        { input: { experimentId: e.id, reason: 'leaks PII', evidence: { ticket: 'SEC-12' } } },
        admin.token,
      )
    ).quarantineExperiment;
    expect(record).toMatchObject({
      status: 'QUARANTINED',
      reason: 'leaks PII',
      evidence: { byAdmin: true, statement: { ticket: 'SEC-12' } },
      failureMetrics: { accuracy: 0.95, latency_ms: 100 },
    });
    expect((await experiment(owner, e.id)).status).toBe('QUARANTINED');

    const req = (
      await ok(
        s.url,
        RequestReevaluationDocument,
        { input: { quarantineRecordId: record.id, reason: 'fixed' } },
        owner.token,
      )
    ).requestReevaluation;
    await ok(s.url, DecideReevaluationDocument, { input: { id: req.id, approve: false, notes: 'no' } }, admin.token);
    expect(
      (await ok(s.url, QuarantineRecordsDocument, { projectId }, owner.token)).quarantineRecords.edges[0]!.node.status,
    ).toBe('QUARANTINED');
    expect(
      codes(
        await gql(
          s.url,
          CreateExperimentDocument,
          { input: { projectId, name: 'x', config: { model: 'suspicious' }, datasetId: 'd' } },
          owner.token,
        ),
      ),
    ).toEqual(['CONFLICT']);
  });
});

describe('policies', () => {
  let opa: Server;
  let opaUrl: string;
  const asked: { path: string; input: any }[] = [];
  let t: TestServer;
  let tAdmin: TestUser;
  beforeAll(async () => {
    // A local server speaking OPA's Data API: POST /v1/data/<path> {input} -> {result}.
    opa = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const input = JSON.parse(body).input;
        asked.push({ path: req.url!, input });
        res.setHeader('content-type', 'application/json');
        if (req.method !== 'POST' || !req.url!.startsWith('/v1/data/')) return void res.writeHead(404).end('{}');
        if (req.url === '/v1/data/steward/quality')
          return void res.end(
            JSON.stringify({
              result: {
                allow: input.metrics.accuracy >= 0.9,
                deny: input.metrics.accuracy >= 0.9 ? [] : ['accuracy under 0.9'],
              },
            }),
          );
        if (req.url === '/v1/data/steward/unloaded') return void res.end(JSON.stringify({}));
        res.end(JSON.stringify({ result: true }));
      });
    });
    await new Promise<void>((r) => opa.listen(0, '127.0.0.1', r));
    opaUrl = `http://127.0.0.1:${(opa.address() as AddressInfo).port}`;
    t = await startTestServer({ env: { OPA_URL: opaUrl } });
    tAdmin = await firstAdmin(t);
  });
  afterAll(async () => {
    await t?.close();
    opa?.close();
  });

  it("asks OPA about the project's active policies and reports what it said", async () => {
    const { owner, projectId } = await lab(
      () => t,
      () => tAdmin,
    );
    const policy = (
      await ok(
        t.url,
        CreatePolicyDocument,
        {
          input: {
            name: unique('quality-'),
            packagePath: 'steward.quality',
            regoCode: 'package steward.quality\ndefault allow := false\nallow if input.metrics.accuracy >= 0.9',
          },
        },
        tAdmin.token,
      )
    ).createPolicy;
    expect(
      codes(
        await gql(
          t.url,
          CreatePolicyDocument,
          { input: { name: unique('p-'), packagePath: 'x', regoCode: 'package x' } },
          owner.token,
        ),
      ),
    ).toEqual(['FORBIDDEN']);
    expect(
      (await ok(t.url, AttachPolicyDocument, { input: { projectId, policyId: policy.id } }, owner.token)).attachPolicy,
    ).toBe(true);
    expect(
      (await ok(t.url, ProjectPoliciesDocument, { projectId }, owner.token)).projectPolicies.map((p) => p.id),
    ).toEqual([policy.id]);

    const good = await completed(owner, projectId, { model: 'good' }, t.url);
    const passed = await evaluate(owner, good.id, { accuracy: 0.95, latency_ms: 100 }, t.url);
    expect(passed.policyOutcome).toBe('PASSED');
    expect(asked.at(-1)).toMatchObject({
      path: '/v1/data/steward/quality',
      input: { experimentId: good.id, metrics: { accuracy: 0.95 }, verdict: 'PASS' },
    });

    const meh = await completed(owner, projectId, { model: 'meh' }, t.url);
    const failed = await evaluate(owner, meh.id, { accuracy: 0.85, latency_ms: 100 }, t.url);
    expect(failed).toMatchObject({
      aiVerdict: 'PASS',
      policyOutcome: 'FAILED',
      policyResults: [{ policy: policy.name, allowed: false, result: { deny: ['accuracy under 0.9'] } }],
    });

    // Switched off, it is not asked: and then nothing was evaluated.
    await ok(t.url, SetPolicyActiveDocument, { input: { id: policy.id, active: false } }, tAdmin.token);
    const n = asked.length;
    const off = await completed(owner, projectId, { model: 'off' }, t.url);
    expect((await evaluate(owner, off.id, { accuracy: 0.95, latency_ms: 100 }, t.url)).policyOutcome).toBe(
      'NOT_EVALUATED',
    );
    expect(asked.length).toBe(n);
  });

  it('lets no promotion through that a policy denied, and names the policy', async () => {
    const { owner, projectId } = await lab(
      () => t,
      () => tAdmin,
    );
    const policy = (
      await ok(
        t.url,
        CreatePolicyDocument,
        { input: { name: unique('quality-'), packagePath: 'steward.quality', regoCode: 'package steward.quality' } },
        tAdmin.token,
      )
    ).createPolicy;
    await ok(t.url, AttachPolicyDocument, { input: { projectId, policyId: policy.id } }, owner.token);
    const meh = await completed(owner, projectId, { model: 'meh' }, t.url);
    expect(await evaluate(owner, meh.id, { accuracy: 0.85, latency_ms: 100 }, t.url)).toMatchObject({
      aiVerdict: 'PASS',
      policyOutcome: 'FAILED',
    });
    const r = await gql(t.url, ProposePromotionDocument, { input: { experimentId: meh.id } }, owner.token);
    expect(codes(r)).toEqual(['FORBIDDEN']);
    expect(r.errors![0]!.message).toContain(policy.name);
    expect((await ok(t.url, PromotionsDocument, { projectId }, owner.token)).promotions.edges).toEqual([]);
  });

  it('lets only admins detach a policy an admin attached', async () => {
    const { owner, projectId } = await lab(
      () => t,
      () => tAdmin,
    );
    const guard = (
      await ok(
        t.url,
        CreatePolicyDocument,
        { input: { name: unique('guard-'), packagePath: 'steward.fine', regoCode: 'package steward.fine' } },
        tAdmin.token,
      )
    ).createPolicy;
    const own = (
      await ok(
        t.url,
        CreatePolicyDocument,
        { input: { name: unique('own-'), packagePath: 'steward.fine', regoCode: 'package steward.fine' } },
        tAdmin.token,
      )
    ).createPolicy;
    await ok(t.url, AttachPolicyDocument, { input: { projectId, policyId: guard.id } }, tAdmin.token);
    await ok(t.url, AttachPolicyDocument, { input: { projectId, policyId: own.id } }, owner.token);
    const detach = `mutation($i: ProjectPolicyInput!) { detachPolicy(input: $i) }`;
    expect(codes(await gql(t.url, detach, { i: { projectId, policyId: guard.id } }, owner.token))).toEqual([
      'FORBIDDEN',
    ]);
    // A maintainer re-attaching it changes nothing; their own policy they detach.
    await ok(t.url, AttachPolicyDocument, { input: { projectId, policyId: guard.id } }, owner.token);
    expect(codes(await gql(t.url, detach, { i: { projectId, policyId: guard.id } }, owner.token))).toEqual([
      'FORBIDDEN',
    ]);
    expect((await ok(t.url, detach, { i: { projectId, policyId: own.id } }, owner.token)).detachPolicy).toBe(true);
    expect((await ok(t.url, detach, { i: { projectId, policyId: guard.id } }, tAdmin.token)).detachPolicy).toBe(true);
    expect((await ok(t.url, ProjectPoliciesDocument, { projectId }, owner.token)).projectPolicies).toEqual([]);
  });

  it('never reports a policy OPA could not answer for as passed', async () => {
    const { owner, projectId } = await lab(
      () => t,
      () => tAdmin,
    );
    const fine = (
      await ok(
        t.url,
        CreatePolicyDocument,
        {
          input: {
            name: unique('fine-'),
            packagePath: 'steward.fine',
            regoCode: 'package steward.fine\nallow := true',
          },
        },
        tAdmin.token,
      )
    ).createPolicy;
    const missing = (
      await ok(
        t.url,
        CreatePolicyDocument,
        { input: { name: unique('unloaded-'), packagePath: 'steward.unloaded', regoCode: 'package steward.unloaded' } },
        tAdmin.token,
      )
    ).createPolicy;
    for (const p of [fine, missing])
      await ok(t.url, AttachPolicyDocument, { input: { projectId, policyId: p.id } }, owner.token);
    const e = await completed(owner, projectId, { model: 'x' }, t.url);
    const ev = await evaluate(owner, e.id, { accuracy: 0.95, latency_ms: 100 }, t.url);
    expect(ev.policyOutcome).toBe('NOT_EVALUATED');
    expect(ev.policyResults).toContainEqual(expect.objectContaining({ policy: missing.name, allowed: null }));
    expect(ev.policyResults).toContainEqual(expect.objectContaining({ policy: fine.name, allowed: true }));
  });
});
