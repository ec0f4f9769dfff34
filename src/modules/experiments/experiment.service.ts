import { createHash } from 'node:crypto';
import { LockMode } from '@mikro-orm/core';
import sql from 'sql-template-tag';

import type { Config } from '../../config.js';
import type { SqlClient } from '../../db/sql.js';
import type { EventBus } from '../../events/bus.js';
import type { EventScope } from '../../events/subscription.js';
import { conflictOnDuplicate } from '../../shared/conflict.js';
import { NEWEST_FIRST, paginate, type PageArgs } from '../../shared/connection.js';
import { BadInputError, ConflictError, ForbiddenError, NotFoundError, requireUuid } from '../../shared/errors.js';
import { and, readModel } from '../../shared/read-model.js';
import { inTransaction, type Scope, type Viewer } from '../../shared/scope.js';
import { isHumanAdmin } from '../../shared/viewer.js';
import { canonicalize, type AuditService } from '../audit/index.js';
import type { ProjectService } from '../projects/index.js';
import { ProjectRole } from '../projects/project-member.entity.js';
import { ApprovalStatus } from '../work/approval.entity.js';
import type { ApprovalRow, ApprovalService } from '../work/index.js';
import {
  ComparisonReport,
  Evaluation,
  Experiment,
  ExperimentStatus,
  PolicyOutcome,
  Promotion,
  PromotionStatus,
  Verdict,
} from './experiment.entity.js';
import { EXPERIMENT_STATUS_CHANGED, type ExperimentEvent } from './experiments.events.js';
import { compare, judge } from './judge.js';
import { evaluatePolicies } from './opa.js';
import { Policy } from './policy.entity.js';
import { QuarantineRecord, QuarantineStatus, ReevaluationRequest, ReevaluationStatus } from './quarantine.entity.js';
import {
  Baseline,
  Version,
  VersionAction,
  VersionHistory,
  VersionTag,
  type BaselineOperator,
} from './version.entity.js';

export const PROMOTE_ACTION = 'experiment.promote';

export interface ExperimentDeps {
  config: Pick<Config, 'OPA_URL' | 'OPA_TIMEOUT_MS'>;
  db: SqlClient;
  bus: EventBus;
  audit: AuditService;
  projects: ProjectService;
  approvals: ApprovalService;
}

/** The canonical JSON of a config and its sha256 (hex): the config's identity, also in the blacklist. */
export function configIdentity(config: Record<string, unknown>): { canonical: string; hash: string } {
  let canonical: string;
  try {
    canonical = canonicalize(config);
  } catch (err) {
    throw BadInputError.field('config', (err as Error).message);
  }
  return { canonical, hash: createHash('sha256').update(canonical).digest('hex') };
}

/** Transitions a caller may ask for directly; EVALUATING, PROMOTED and QUARANTINED are reached through evaluations, promotions and quarantine. */
const DIRECT: Partial<Record<ExperimentStatus, ExperimentStatus[]>> = {
  [ExperimentStatus.CREATED]: [ExperimentStatus.RUNNING],
  [ExperimentStatus.RUNNING]: [ExperimentStatus.COMPLETED, ExperimentStatus.FAILED],
};

const BLOCKING = [QuarantineStatus.QUARANTINED, QuarantineStatus.UNDER_REVIEW];
const effective = (e: Pick<Evaluation, 'aiVerdict' | 'humanOverride'>) => e.humanOverride ?? e.aiVerdict;
const who = (viewer: Viewer | null) => (viewer && !viewer.serviceActor ? viewer.userId : null);

/**
 * The three-version flow: versions and their history, baselines, policies,
 * experiments in V1 and their status machine, evaluations with an AI verdict and human
 * override, promotions to V2 through an Approval, degrading V2 to V3, and quarantine
 * (the blacklist) with admin-approved re-evaluation. Every change is audited in its
 * own transaction and experiment status changes are published after commit.
 */
export class ExperimentService {
  constructor(private readonly deps: ExperimentDeps) {
    deps.approvals.onDecided(PROMOTE_ACTION, (tx, row, status) => this.promotionDecided(tx, row, status));
  }

  get policy() {
    return this.deps.projects.policy;
  }

  // ---------- versions ----------

  /** V1, V2 and V3 exist from a project's first use of them on (idempotent). */
  private async ensureVersions(tx: Scope, projectId: string): Promise<void> {
    await tx.em.execute(
      `INSERT INTO versions (id, project_id, tag) SELECT gen_random_uuid(), ?, t::version_tag FROM unnest(array['V1','V2','V3']) t ON CONFLICT (project_id, tag) DO NOTHING`,
      [projectId],
    );
  }

  private async version(tx: Scope, projectId: string, tag: VersionTag): Promise<Version> {
    await this.ensureVersions(tx, projectId);
    return tx.em.findOneOrFail(Version, { project: projectId, tag }, { lockMode: LockMode.PESSIMISTIC_WRITE });
  }

  async versions(scope: Scope, viewer: Viewer, id: string): Promise<Version[]> {
    const projectId = requireUuid(id, 'projectId');
    await this.policy.require(viewer, projectId, ProjectRole.VIEWER);
    // A query writes nothing: the versions are made with the project (a trigger, see the migration).
    return scope.em.find(Version, { project: projectId }, { orderBy: { tag: 'ASC' } });
  }

  private history(
    tx: Scope,
    projectId: string,
    action: VersionAction,
    fromTag: VersionTag,
    toTag: VersionTag,
    reason: string,
    configHash: string | null,
  ) {
    const h = tx.em.create(VersionHistory, {
      project: projectId,
      action,
      fromTag,
      toTag,
      reason,
      configHash,
      actor: who(tx.viewer),
      actorLabel: tx.viewer?.serviceActor ?? (tx.viewer ? null : 'system'),
    });
    this.deps.audit.record(tx, {
      action: `version.${action.toLowerCase()}`,
      entityType: 'Project',
      entityId: projectId,
      after: { fromTag, toTag, reason, configHash },
    });
    return h;
  }

  async updateVersion(
    scope: Scope,
    viewer: Viewer,
    input: {
      projectId: string;
      tag: VersionTag;
      modelConfig?: Record<string, unknown> | null;
      changelog?: string | null;
      reason: string;
    },
  ): Promise<Version> {
    const projectId = requireUuid(input.projectId, 'projectId');
    await this.deps.projects.requireWritable(viewer, projectId, ProjectRole.MAINTAINER);
    return inTransaction(scope, async (tx) => {
      const v = await this.version(tx, projectId, input.tag);
      if (input.modelConfig) {
        const { canonical, hash } = configIdentity(input.modelConfig);
        v.modelConfig = JSON.parse(canonical) as Record<string, unknown>;
        v.configHash = hash;
      }
      if (input.changelog !== undefined) v.changelog = input.changelog;
      this.history(tx, projectId, VersionAction.UPDATED, input.tag, input.tag, input.reason, v.configHash ?? null);
      return v;
    });
  }

  /**
   * V2 is DEGRADED to V3: V3 takes V2's config and metrics (kept for inspection, as seed
   * 004's quarantine version), and V2 is emptied until the next promotion.
   */
  async degrade(scope: Scope, viewer: Viewer, input: { projectId: string; reason: string }): Promise<Version> {
    const projectId = requireUuid(input.projectId, 'projectId');
    await this.deps.projects.requireWritable(viewer, projectId, ProjectRole.MAINTAINER);
    return inTransaction(scope, async (tx) => {
      const v2 = await this.version(tx, projectId, VersionTag.V2);
      const v3 = await this.version(tx, projectId, VersionTag.V3);
      if (!v2.configHash) throw new ConflictError('V2 has no config to degrade');
      Object.assign(v3, {
        modelConfig: v2.modelConfig,
        configHash: v2.configHash,
        metrics: v2.metrics ?? null,
        changelog: `Degraded from V2: ${input.reason}`,
      });
      Object.assign(v2, { modelConfig: {}, configHash: null, metrics: null });
      this.history(
        tx,
        projectId,
        VersionAction.DEGRADED,
        VersionTag.V2,
        VersionTag.V3,
        input.reason,
        v3.configHash ?? null,
      );
      return v3;
    });
  }

  historyOf(viewer: Viewer, projectId: string, fields: Iterable<string>, page: PageArgs) {
    return paginate(
      this.deps.db,
      {
        model: readModel(VersionHistory),
        fields,
        where: and([sql`t.project_id = ${projectId}::uuid`, this.policy.visible(viewer, 't.project_id')]),
        sort: NEWEST_FIRST,
      },
      page,
    );
  }

  // ---------- baselines ----------

  /** Creates or changes the project's baseline for a metric (one per metric key). */
  async setBaseline(
    scope: Scope,
    viewer: Viewer,
    input: {
      projectId: string;
      metricKey: string;
      threshold: string;
      operator: BaselineOperator;
      active?: boolean | null;
    },
  ): Promise<Baseline> {
    const projectId = requireUuid(input.projectId, 'projectId');
    await this.deps.projects.requireWritable(viewer, projectId, ProjectRole.MAINTAINER);
    return inTransaction(scope, async (tx) => {
      let b = await tx.em.findOne(
        Baseline,
        { project: projectId, metricKey: input.metricKey },
        { lockMode: LockMode.PESSIMISTIC_WRITE },
      );
      const before = b ? { threshold: b.threshold, operator: b.operator, active: b.active } : null;
      if (!b)
        b = tx.em.create(Baseline, {
          project: projectId,
          metricKey: input.metricKey,
          threshold: input.threshold,
          operator: input.operator,
          active: input.active ?? true,
        });
      else Object.assign(b, { threshold: input.threshold, operator: input.operator, active: input.active ?? b.active });
      await tx.em.flush();
      this.deps.audit.record(tx, {
        action: before ? 'baseline.update' : 'baseline.create',
        entityType: 'Baseline',
        entityId: b.id,
        before,
        after: { projectId, metricKey: b.metricKey, threshold: b.threshold, operator: b.operator, active: b.active },
      });
      return b;
    });
  }

  async baselines(viewer: Viewer, projectId: string): Promise<Baseline[]> {
    await this.policy.require(viewer, requireUuid(projectId, 'projectId'), ProjectRole.VIEWER);
    return this.deps.db.query<Baseline>(
      sql`SELECT id, metric_key AS "metricKey", threshold::text AS threshold, operator, active, created_at AS "createdAt", updated_at AS "updatedAt" FROM baselines WHERE project_id = ${projectId}::uuid ORDER BY metric_key`,
    );
  }

  private activeBaselines(tx: Scope, projectId: string) {
    return tx.em.execute<{ metricKey: string; operator: BaselineOperator; threshold: string }[]>(
      `SELECT metric_key AS "metricKey", operator, threshold::text AS threshold FROM baselines WHERE project_id = ? AND active ORDER BY metric_key`,
      [projectId],
    );
  }

  // ---------- experiments ----------

  /** In V1, with a canonical config; refused (CONFLICT, naming the record) while its hash is quarantined in the project. */
  async createExperiment(
    scope: Scope,
    viewer: Viewer,
    input: { projectId: string; name: string; config: Record<string, unknown>; datasetId: string },
  ): Promise<Experiment> {
    const projectId = requireUuid(input.projectId, 'projectId');
    await this.deps.projects.requireWritable(viewer, projectId, ProjectRole.CONTRIBUTOR);
    const { canonical, hash } = configIdentity(input.config);
    return inTransaction(scope, async (tx) => {
      const [blocked] = await tx.em.execute<{ id: string; status: QuarantineStatus; reason: string }[]>(
        `SELECT id, status, reason FROM quarantine_records WHERE project_id = ? AND config_hash = ? AND status = ANY(?::quarantine_status[])`,
        [projectId, hash, `{${BLOCKING.join(',')}}`],
      );
      if (blocked) {
        throw new ConflictError(
          `This config (sha256 ${hash}) is quarantined: quarantine record ${blocked.id} (${blocked.status}: ${blocked.reason}). Request a re-evaluation.`,
          { quarantineRecordId: blocked.id, configHash: hash, status: blocked.status },
        );
      }
      const v1 = await this.version(tx, projectId, VersionTag.V1);
      const e = tx.em.create(Experiment, {
        project: projectId,
        version: v1,
        name: input.name,
        config: JSON.parse(canonical) as Record<string, unknown>,
        configHash: hash,
        datasetId: input.datasetId,
        createdBy: who(viewer),
      });
      await tx.em.flush();
      this.deps.audit.record(tx, {
        action: 'experiment.create',
        entityType: 'Experiment',
        entityId: e.id,
        after: { projectId, name: e.name, configHash: hash, datasetId: e.datasetId },
      });
      await this.published(tx, e);
      return e;
    });
  }

  private async published(tx: Scope, e: Experiment) {
    await this.deps.bus.publish(tx.em, EXPERIMENT_STATUS_CHANGED, {
      experimentId: e.id,
      projectId: e.project.id,
      status: e.status,
    } satisfies ExperimentEvent);
  }

  private async lockExperiment(tx: Scope, id: string): Promise<Experiment> {
    const e = await tx.em.findOne(Experiment, id, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!e) throw new NotFoundError('Experiment', id);
    return e;
  }

  private move(tx: Scope, e: Experiment, to: ExperimentStatus, allowedFrom: ExperimentStatus[]) {
    if (!allowedFrom.includes(e.status))
      throw new BadInputError(`An experiment cannot go from ${e.status} to ${to}`, { from: e.status, to });
    const from = e.status;
    e.status = to;
    this.deps.audit.record(tx, {
      action: 'experiment.status',
      entityType: 'Experiment',
      entityId: e.id,
      before: { status: from },
      after: { status: to },
    });
  }

  private async projectOf(viewer: Viewer, experimentId: string, min: ProjectRole): Promise<string> {
    const row = await this.deps.db.one<{ project_id: string }>(
      sql`SELECT project_id FROM experiments WHERE id = ${experimentId}::uuid`,
    );
    if (!row || !(await this.policy.canRead(viewer, row.project_id)))
      throw new NotFoundError('Experiment', experimentId);
    await this.deps.projects.requireWritable(viewer, row.project_id, min);
    return row.project_id;
  }

  /** RUNNING, COMPLETED or FAILED (by users or the runner's service token). */
  async setStatus(scope: Scope, viewer: Viewer, input: { id: string; status: ExperimentStatus }): Promise<Experiment> {
    const id = requireUuid(input.id);
    await this.projectOf(viewer, id, ProjectRole.CONTRIBUTOR);
    return inTransaction(scope, async (tx) => {
      const e = await this.lockExperiment(tx, id);
      const from = Object.entries(DIRECT)
        .filter(([, to]) => to.includes(input.status))
        .map(([f]) => f as ExperimentStatus);
      if (!from.length)
        throw new BadInputError(
          `${input.status} is reached through ${input.status === ExperimentStatus.EVALUATING ? 'submitEvaluation' : input.status === ExperimentStatus.PROMOTED ? 'an approved promotion' : 'quarantine'}, not set directly`,
          { to: input.status },
        );
      this.move(tx, e, input.status, from);
      await this.published(tx, e);
      return e;
    });
  }

  // ---------- evaluations ----------

  /**
   * Judges the metrics of a COMPLETED experiment (which becomes EVALUATING) against the
   * project's active baselines (see judge.ts) and asks its active policies (opa.ts). A
   * FAIL quarantines the config at once, with the evaluation as evidence.
   */
  async submitEvaluation(
    scope: Scope,
    viewer: Viewer,
    input: { experimentId: string; metrics: Record<string, unknown> },
  ): Promise<Evaluation> {
    const id = requireUuid(input.experimentId, 'experimentId');
    const projectId = await this.projectOf(viewer, id, ProjectRole.CONTRIBUTOR);
    const metrics: Record<string, number> = {};
    for (const [k, v] of Object.entries(input.metrics)) {
      if (typeof v !== 'number' || !Number.isFinite(v))
        throw BadInputError.field(`metrics.${k}`, 'must be a finite number');
      metrics[k] = v;
    }
    const snapshot = await this.deps.db.one<{ config: unknown; status: ExperimentStatus }>(
      sql`SELECT config, status FROM experiments WHERE id = ${id}::uuid`,
    );
    if (snapshot?.status !== ExperimentStatus.COMPLETED)
      throw new BadInputError(`Only a COMPLETED experiment is evaluated (this one is ${snapshot?.status})`, {
        from: snapshot?.status,
        to: ExperimentStatus.EVALUATING,
      });
    const policies = await this.deps.db.query<{ id: string; name: string; packagePath: string }>(
      sql`SELECT p.id, p.name, p.package_path AS "packagePath" FROM project_policies pp JOIN policies p ON p.id = pp.policy_id WHERE pp.project_id = ${projectId}::uuid AND p.active ORDER BY p.name`,
    );
    return inTransaction(scope, async (tx) => {
      const e = await this.lockExperiment(tx, id);
      this.move(tx, e, ExperimentStatus.EVALUATING, [ExperimentStatus.COMPLETED]);
      const { verdict, confidence, checks } = judge(await this.activeBaselines(tx, projectId), metrics);
      // Asked outside the row lock would be nicer, but the input depends on the verdict; OPA has a timeout.
      const policy = await evaluatePolicies(this.deps.config.OPA_URL, this.deps.config.OPA_TIMEOUT_MS, policies, {
        projectId,
        experimentId: id,
        config: e.config,
        configHash: e.configHash,
        datasetId: e.datasetId,
        metrics,
        checks,
        verdict,
      });
      const ev = tx.em.create(Evaluation, {
        experiment: e,
        metrics,
        aiVerdict: verdict,
        confidence,
        checks,
        policyOutcome: policy.outcome,
        policyResults: policy.results,
        submittedBy: who(viewer),
      });
      await tx.em.flush();
      this.deps.audit.record(tx, {
        action: 'evaluation.verdict',
        entityType: 'Evaluation',
        entityId: ev.id,
        after: { experimentId: id, metrics, verdict, confidence, policyOutcome: policy.outcome },
      });
      if (verdict === Verdict.FAIL)
        await this.quarantine(
          tx,
          e,
          `Failing evaluation ${ev.id}`,
          { evaluationId: ev.id, checks, verdict, confidence },
          failed(checks),
        );
      await this.published(tx, e);
      return ev;
    });
  }

  /** A MAINTAINER's (or admin's) verdict over the AI's, with a reason, while the experiment is EVALUATING; FAIL quarantines. */
  async override(
    scope: Scope,
    viewer: Viewer,
    input: { evaluationId: string; verdict: Verdict; reason: string },
  ): Promise<Evaluation> {
    const id = requireUuid(input.evaluationId, 'evaluationId');
    const row = await this.deps.db.one<{ experiment_id: string }>(
      sql`SELECT experiment_id FROM evaluations WHERE id = ${id}::uuid`,
    );
    if (!row) throw new NotFoundError('Evaluation', id);
    await this.projectOf(viewer, row.experiment_id, ProjectRole.MAINTAINER);
    if (!input.reason.trim()) throw BadInputError.field('reason', 'is required');
    return inTransaction(scope, async (tx) => {
      const e = await this.lockExperiment(tx, row.experiment_id);
      if (e.status !== ExperimentStatus.EVALUATING)
        throw new BadInputError(
          `Only an EVALUATING experiment's evaluation can be overridden (this one is ${e.status})`,
        );
      const ev = await tx.em.findOneOrFail(Evaluation, id, { lockMode: LockMode.PESSIMISTIC_WRITE });
      const before = { verdict: effective(ev), humanOverride: ev.humanOverride ?? null };
      Object.assign(ev, {
        humanOverride: input.verdict,
        overrideReason: input.reason,
        overriddenBy: who(viewer),
        overriddenAt: new Date(),
      });
      this.deps.audit.record(tx, {
        action: 'evaluation.override',
        entityType: 'Evaluation',
        entityId: ev.id,
        before,
        after: { verdict: input.verdict, reason: input.reason },
      });
      if (input.verdict === Verdict.FAIL) {
        await this.quarantine(
          tx,
          e,
          `Evaluation ${ev.id} overridden to FAIL: ${input.reason}`,
          { evaluationId: ev.id, override: input.reason, checks: ev.checks },
          failed(ev.checks as never),
        );
        await this.published(tx, e);
      }
      return ev;
    });
  }

  // ---------- quarantine ----------

  /** EVALUATING → QUARANTINED, and the config's record (one per project and hash) is (re)opened. */
  private async quarantine(
    tx: Scope,
    e: Experiment,
    reason: string,
    evidence: unknown,
    failureMetrics: Record<string, unknown> | null,
  ): Promise<QuarantineRecord> {
    this.move(tx, e, ExperimentStatus.QUARANTINED, [ExperimentStatus.EVALUATING]);
    const [r] = await tx.em.execute<{ id: string }[]>(
      `INSERT INTO quarantine_records (id, project_id, config_hash, experiment_id, reason, evidence, failure_metrics, status, quarantined_by_id)
       VALUES (gen_random_uuid(), ?, ?, ?, ?, ?::jsonb, ?::jsonb, 'QUARANTINED', ?)
       ON CONFLICT (project_id, config_hash) DO UPDATE SET experiment_id = EXCLUDED.experiment_id, reason = EXCLUDED.reason, evidence = EXCLUDED.evidence,
         failure_metrics = EXCLUDED.failure_metrics, status = 'QUARANTINED', quarantined_by_id = EXCLUDED.quarantined_by_id, updated_at = now()
       RETURNING id`,
      [
        e.project.id,
        e.configHash,
        e.id,
        reason,
        JSON.stringify(evidence ?? null),
        failureMetrics ? JSON.stringify(failureMetrics) : null,
        who(tx.viewer),
      ],
    );
    this.deps.audit.record(tx, {
      action: 'quarantine.record',
      entityType: 'QuarantineRecord',
      entityId: r!.id,
      after: { projectId: e.project.id, configHash: e.configHash, experimentId: e.id, reason, failureMetrics },
    });
    return tx.em.findOneOrFail(QuarantineRecord, r!.id, { refresh: true });
  }

  /** An admin quarantines an EVALUATING experiment's config, with a reason and evidence. */
  async quarantineExperiment(
    scope: Scope,
    viewer: Viewer,
    input: { experimentId: string; reason: string; evidence?: unknown },
  ): Promise<QuarantineRecord> {
    const id = requireUuid(input.experimentId, 'experimentId');
    await this.projectOf(viewer, id, ProjectRole.OWNER);
    return inTransaction(scope, async (tx) => {
      const e = await this.lockExperiment(tx, id);
      const [latest] = await tx.em.execute<{ metrics: Record<string, unknown> }[]>(
        `SELECT metrics FROM evaluations WHERE experiment_id = ? ORDER BY id DESC LIMIT 1`,
        [id],
      );
      const r = await this.quarantine(
        tx,
        e,
        input.reason,
        { byAdmin: true, statement: input.evidence ?? null },
        latest?.metrics ?? null,
      );
      await this.published(tx, e);
      return r;
    });
  }

  /** Asks for a quarantined config to be allowed again; the record is UNDER_REVIEW until an admin decides. */
  async requestReevaluation(
    scope: Scope,
    viewer: Viewer,
    input: { quarantineRecordId: string; reason: string },
  ): Promise<ReevaluationRequest> {
    const id = requireUuid(input.quarantineRecordId, 'quarantineRecordId');
    const row = await this.deps.db.one<{ project_id: string }>(
      sql`SELECT project_id FROM quarantine_records WHERE id = ${id}::uuid`,
    );
    if (!row || !(await this.policy.canRead(viewer, row.project_id))) throw new NotFoundError('QuarantineRecord', id);
    await this.deps.projects.requireWritable(viewer, row.project_id, ProjectRole.CONTRIBUTOR);
    return inTransaction(scope, async (tx) => {
      const r = await tx.em.findOneOrFail(QuarantineRecord, id, { lockMode: LockMode.PESSIMISTIC_WRITE });
      if (r.status !== QuarantineStatus.QUARANTINED)
        throw new ConflictError(`The record is ${r.status}; only a QUARANTINED config can be put up for re-evaluation`);
      r.status = QuarantineStatus.UNDER_REVIEW;
      const req = tx.em.create(ReevaluationRequest, {
        quarantineRecord: r,
        reason: input.reason,
        requestedBy: who(viewer),
      });
      await tx.em.flush();
      this.deps.audit.record(tx, {
        action: 'reevaluation.request',
        entityType: 'ReevaluationRequest',
        entityId: req.id,
        after: { quarantineRecordId: id, configHash: r.configHash, reason: input.reason },
      });
      return req;
    });
  }

  /** Admins only: APPROVED lifts the block for the hash (APPROVED_RETRY); REJECTED keeps it QUARANTINED. */
  async decideReevaluation(
    scope: Scope,
    viewer: Viewer,
    input: { id: string; approve: boolean; notes?: string | null },
  ): Promise<ReevaluationRequest> {
    const id = requireUuid(input.id);
    return inTransaction(scope, async (tx) => {
      const req = await tx.em.findOne(ReevaluationRequest, id, { lockMode: LockMode.PESSIMISTIC_WRITE });
      if (!req) throw new NotFoundError('ReevaluationRequest', id);
      if (req.status !== ReevaluationStatus.PENDING) throw new ConflictError(`This request is already ${req.status}`);
      if (req.requestedBy?.id === viewer.userId) throw new ConflictError('You cannot decide your own request');
      const r = await tx.em.findOneOrFail(QuarantineRecord, req.quarantineRecord.id, {
        lockMode: LockMode.PESSIMISTIC_WRITE,
      });
      Object.assign(req, {
        status: input.approve ? ReevaluationStatus.APPROVED : ReevaluationStatus.REJECTED,
        decidedBy: viewer.userId,
        decidedAt: new Date(),
        notes: input.notes ?? null,
      });
      const before = r.status;
      r.status = input.approve ? QuarantineStatus.APPROVED_RETRY : QuarantineStatus.QUARANTINED;
      this.deps.audit.record(tx, {
        action: input.approve ? 'reevaluation.approve' : 'reevaluation.reject',
        entityType: 'QuarantineRecord',
        entityId: r.id,
        before: { status: before },
        after: { status: r.status, requestId: req.id, notes: input.notes ?? null },
      });
      return req;
    });
  }

  // ---------- promotions ----------

  /** Proposes a PASSing (effective verdict) EVALUATING experiment for V1 → V2: opens an 'experiment.promote' approval. */
  async proposePromotion(
    scope: Scope,
    viewer: Viewer,
    input: { experimentId: string; reason?: string | null },
  ): Promise<Promotion> {
    const id = requireUuid(input.experimentId, 'experimentId');
    const projectId = await this.projectOf(viewer, id, ProjectRole.CONTRIBUTOR);
    return inTransaction(scope, async (tx) => {
      const e = await this.lockExperiment(tx, id);
      if (e.status !== ExperimentStatus.EVALUATING)
        throw new BadInputError(`Only an EVALUATING experiment can be promoted (this one is ${e.status})`);
      const ev = await tx.em.findOne(Evaluation, { experiment: id }, { orderBy: { id: 'DESC' } });
      if (!ev || effective(ev) !== Verdict.PASS)
        throw new BadInputError(
          `The experiment's evaluation is ${ev ? effective(ev) : 'missing'}; only a PASS is promoted`,
        );
      // A policy that denied the evaluation blocks its promotion, whatever the verdict (a human override included).
      if (ev.policyOutcome === PolicyOutcome.FAILED) {
        const denied = ((ev.policyResults ?? []) as { policy?: string; allowed?: boolean | null }[])
          .filter((r) => r.allowed === false)
          .map((r) => r.policy);
        throw new ForbiddenError(`Promotion denied by policy ${denied.map((n) => `"${n}"`).join(', ')}`);
      }
      const pending = await tx.em.count(Promotion, { experiment: id, status: PromotionStatus.PENDING });
      if (pending) throw new ConflictError('A promotion of this experiment is already waiting for approval');
      const approval = await this.deps.approvals.request(tx, viewer, {
        projectId,
        actionType: PROMOTE_ACTION,
        details: {
          experimentId: id,
          configHash: e.configHash,
          fromTag: 'V1',
          toTag: 'V2',
          reason: input.reason ?? null,
        },
      });
      const p = tx.em.create(Promotion, {
        project: projectId,
        experiment: e,
        evaluation: ev,
        fromTag: VersionTag.V1,
        toTag: VersionTag.V2,
        approval: approval.id,
        reason: input.reason ?? null,
        requestedBy: who(viewer),
      });
      await tx.em.flush();
      this.deps.audit.record(tx, {
        action: 'promotion.propose',
        entityType: 'Promotion',
        entityId: p.id,
        after: { experimentId: id, approvalId: approval.id },
      });
      return p;
    });
  }

  /** The approval's decision, in its transaction: APPROVED promotes (V2 takes the config; history; report); otherwise nothing changes but the promotion's status. */
  private async promotionDecided(tx: Scope, row: ApprovalRow, status: ApprovalStatus): Promise<void> {
    const p = await tx.em.findOne(Promotion, { approval: row.id }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!p || p.status !== PromotionStatus.PENDING) return;
    if (status !== ApprovalStatus.APPROVED) {
      p.status = status === ApprovalStatus.EXPIRED ? PromotionStatus.EXPIRED : PromotionStatus.REJECTED;
      this.deps.audit.record(tx, {
        action: `promotion.${p.status.toLowerCase()}`,
        entityType: 'Promotion',
        entityId: p.id,
        before: { status: 'PENDING' },
        after: { status: p.status },
      });
      return;
    }
    const e = await this.lockExperiment(tx, p.experiment.id);
    if (e.status !== ExperimentStatus.EVALUATING)
      throw new ConflictError(`The experiment is ${e.status} now; it can no longer be promoted`);
    const ev = await tx.em.findOneOrFail(Evaluation, p.evaluation.id);
    const projectId = p.project.id;
    const v2 = await this.version(tx, projectId, VersionTag.V2);
    const report = compare(await this.activeBaselines(tx, projectId), ev.metrics, v2.metrics ?? null);
    const r = tx.em.create(ComparisonReport, {
      project: projectId,
      experiment: e,
      version: v2,
      promotion: p,
      metrics: report.metrics,
      recommendation: report.recommendation,
      confidence: report.confidence,
    });
    Object.assign(v2, {
      modelConfig: e.config,
      configHash: e.configHash,
      metrics: ev.metrics,
      changelog: `Promoted experiment ${e.name} (${e.id})`,
      promotedAt: new Date(),
      promotedBy: who(tx.viewer),
    });
    p.status = PromotionStatus.APPROVED;
    this.move(tx, e, ExperimentStatus.PROMOTED, [ExperimentStatus.EVALUATING]);
    this.history(
      tx,
      projectId,
      VersionAction.PROMOTED,
      VersionTag.V1,
      VersionTag.V2,
      p.reason ?? `Promotion ${p.id} approved`,
      e.configHash,
    );
    await tx.em.flush();
    this.deps.audit.record(tx, {
      action: 'promotion.approved',
      entityType: 'Promotion',
      entityId: p.id,
      before: { status: 'PENDING' },
      after: { status: p.status, reportId: r.id, recommendation: report.recommendation, confidence: report.confidence },
    });
    await this.published(tx, e);
  }

  // ---------- policies ----------

  async createPolicy(
    scope: Scope,
    input: { name: string; packagePath: string; regoCode: string; active?: boolean | null },
  ): Promise<Policy> {
    return conflictOnDuplicate(
      () =>
        inTransaction(scope, async (tx) => {
          const p = tx.em.create(Policy, {
            name: input.name,
            packagePath: input.packagePath,
            regoCode: input.regoCode,
            active: input.active ?? true,
            createdBy: who(scope.viewer),
          });
          await tx.em.flush();
          this.deps.audit.record(tx, {
            action: 'policy.create',
            entityType: 'Policy',
            entityId: p.id,
            after: { name: p.name, packagePath: p.packagePath, active: p.active },
          });
          return p;
        }),
      `A policy named ${input.name} exists`,
    );
  }

  async setPolicyActive(scope: Scope, input: { id: string; active: boolean }): Promise<Policy> {
    const id = requireUuid(input.id);
    return inTransaction(scope, async (tx) => {
      const p = await tx.em.findOne(Policy, id, { lockMode: LockMode.PESSIMISTIC_WRITE });
      if (!p) throw new NotFoundError('Policy', id);
      const before = p.active;
      p.active = input.active;
      this.deps.audit.record(tx, {
        action: input.active ? 'policy.activate' : 'policy.deactivate',
        entityType: 'Policy',
        entityId: id,
        before: { active: before },
        after: { active: input.active },
      });
      return p;
    });
  }

  /** Attaches (or detaches) a policy to a project: MAINTAINER+; a policy an admin attached, only admins detach. */
  async attachPolicy(
    scope: Scope,
    viewer: Viewer,
    input: { projectId: string; policyId: string },
    attach: boolean,
  ): Promise<boolean> {
    const projectId = requireUuid(input.projectId, 'projectId');
    const policyId = requireUuid(input.policyId, 'policyId');
    await this.deps.projects.requireWritable(viewer, projectId, ProjectRole.MAINTAINER);
    return inTransaction(scope, async (tx) => {
      if (!(await tx.em.count(Policy, { id: policyId }))) throw new NotFoundError('Policy', policyId);
      const admin = isHumanAdmin(viewer);
      if (!attach && !admin) {
        const [link] = await tx.em.execute<{ attached_by_admin: boolean }[]>(
          `SELECT attached_by_admin FROM project_policies WHERE project_id = ? AND policy_id = ? FOR UPDATE`,
          [projectId, policyId],
        );
        if (link?.attached_by_admin)
          throw new ForbiddenError('An administrator attached this policy; only an administrator detaches it');
      }
      // An admin attaching a policy a maintainer attached before makes it theirs (and so admin-only to detach).
      const rows = attach
        ? await tx.em.execute(
            `INSERT INTO project_policies (id, project_id, policy_id, attached_by_admin) VALUES (gen_random_uuid(), ?, ?, ?)
             ON CONFLICT (project_id, policy_id) DO UPDATE SET attached_by_admin = true WHERE EXCLUDED.attached_by_admin AND NOT project_policies.attached_by_admin RETURNING id`,
            [projectId, policyId, admin],
          )
        : await tx.em.execute(`DELETE FROM project_policies WHERE project_id = ? AND policy_id = ? RETURNING id`, [
            projectId,
            policyId,
          ]);
      if (rows.length)
        this.deps.audit.record(tx, {
          action: attach ? 'policy.attach' : 'policy.detach',
          entityType: 'Project',
          entityId: projectId,
          after: { policyId },
        });
      return rows.length > 0;
    });
  }

  async projectPolicies(viewer: Viewer, projectId: string): Promise<Policy[]> {
    await this.policy.require(viewer, requireUuid(projectId, 'projectId'), ProjectRole.VIEWER);
    return this.deps.db
      .query<Policy>(sql`SELECT p.id, p.name, p.package_path AS "packagePath", p.rego_code AS "regoCode", p.active, p.created_at AS "createdAt", p.updated_at AS "updatedAt"
      FROM project_policies pp JOIN policies p ON p.id = pp.policy_id WHERE pp.project_id = ${projectId}::uuid ORDER BY p.name`);
  }

  // ---------- reads ----------

  experiments(
    viewer: Viewer,
    projectId: string,
    fields: Iterable<string>,
    where: { status?: ExperimentStatus[] | null },
    page: PageArgs,
  ) {
    return paginate(
      this.deps.db,
      {
        model: readModel(Experiment),
        fields,
        where: and([
          sql`t.project_id = ${requireUuid(projectId, 'projectId')}::uuid`,
          this.policy.visible(viewer, 't.project_id'),
          where.status?.length ? sql`t.status = ANY(${where.status}::experiment_status[])` : null,
        ]),
        sort: NEWEST_FIRST,
      },
      page,
    );
  }

  /** SQL condition over `t.project_id`: rows of projects the viewer may see. */
  visible(viewer: Viewer) {
    return this.policy.visible(viewer, 't.project_id');
  }

  /** Subscription filter. */
  hears = (viewer: Viewer, e: ExperimentEvent, scope?: EventScope) => this.policy.canRead(viewer, e.projectId, scope);

  /** A project's rows of `entity` (promotions, comparison reports, quarantine records), newest first, for its readers. */
  projectRows(viewer: Viewer, entity: { name: string }, projectId: string, fields: Iterable<string>, page: PageArgs) {
    const where = and([sql`t.project_id = ${requireUuid(projectId, 'projectId')}::uuid`, this.visible(viewer)]);
    return paginate(this.deps.db, { model: readModel(entity), fields, where, sort: NEWEST_FIRST }, page);
  }

  /** Every stored policy, by name. */
  policies() {
    return this.deps.db.query(
      sql`SELECT id, name, package_path AS "packagePath", rego_code AS "regoCode", active, created_at AS "createdAt", updated_at AS "updatedAt" FROM policies ORDER BY name`,
    );
  }
}

function failed(
  checks:
    | { metric: string; value: number | null; holds: boolean | null; operator: string; threshold: number }[]
    | null
    | undefined,
): Record<string, unknown> | null {
  const out: Record<string, unknown> = {};
  for (const c of checks ?? [])
    if (c.holds === false) out[c.metric] = { value: c.value, operator: c.operator, threshold: c.threshold };
  return Object.keys(out).length ? out : null;
}
