import { Migration } from '@mikro-orm/migrations';

/**
 * Seed 004's three-version flow (versions, version history, baselines, policies and
 * project_policies, experiments, evaluations, promotions, comparison reports,
 * quarantine records and re-evaluation requests) and its production analysis
 * (sessions, tasks, artifacts, code-review results). Written by hand from the
 * experiments and analysis entities only.
 */
export class Migration20261123063000_experiments_and_analysis extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create type "baseline_operator" as enum ('GT', 'LT', 'GTE', 'LTE', 'EQ');`);
    this.addSql(`create type "version_tag" as enum ('V1', 'V2', 'V3');`);
    this.addSql(
      `create type "experiment_status" as enum ('CREATED', 'RUNNING', 'COMPLETED', 'FAILED', 'EVALUATING', 'PROMOTED', 'QUARANTINED');`,
    );
    this.addSql(`create type "quarantine_status" as enum ('QUARANTINED', 'UNDER_REVIEW', 'APPROVED_RETRY');`);
    this.addSql(`create type "reevaluation_status" as enum ('PENDING', 'APPROVED', 'REJECTED');`);
    this.addSql(`create type "verdict" as enum ('PASS', 'FAIL', 'MANUAL_REVIEW');`);
    this.addSql(`create type "policy_outcome" as enum ('NOT_EVALUATED', 'PASSED', 'FAILED');`);
    this.addSql(`create type "promotion_status" as enum ('PENDING', 'APPROVED', 'REJECTED', 'EXPIRED');`);
    this.addSql(`create type "version_action" as enum ('PROMOTED', 'DEGRADED', 'UPDATED');`);
    this.addSql(
      `create table "baselines" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "project_id" uuid not null, "metric_key" text not null, "threshold" numeric(18,6) not null, "operator" "baseline_operator" not null, "active" boolean not null default true, constraint "baselines_pkey" primary key ("id"));`,
    );
    this.addSql(
      `alter table "baselines" add constraint "baselines_project_id_metric_key_unique" unique ("project_id", "metric_key");`,
    );

    this.addSql(
      `create table "policies" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "name" text not null, "package_path" text not null, "rego_code" text not null, "active" boolean not null default true, "created_by_id" uuid null, constraint "policies_pkey" primary key ("id"));`,
    );
    this.addSql(`alter table "policies" add constraint "policies_name_unique" unique ("name");`);

    this.addSql(
      `create table "project_policies" ("id" uuid not null, "created_at" timestamptz not null default now(), "project_id" uuid not null, "policy_id" uuid not null, constraint "project_policies_pkey" primary key ("id"));`,
    );
    this.addSql(
      `alter table "project_policies" add constraint "project_policies_project_id_policy_id_unique" unique ("project_id", "policy_id");`,
    );

    this.addSql(
      `create table "versions" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "project_id" uuid not null, "tag" "version_tag" not null, "model_config" jsonb not null default '{}', "config_hash" text null, "metrics" jsonb null, "changelog" text null, "promoted_at" timestamptz null, "promoted_by_id" uuid null, constraint "versions_pkey" primary key ("id"));`,
    );
    this.addSql(`alter table "versions" add constraint "versions_project_id_tag_unique" unique ("project_id", "tag");`);

    this.addSql(
      `create table "experiments" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "project_id" uuid not null, "version_id" uuid not null, "name" text not null, "config" jsonb not null, "config_hash" text not null, "dataset_id" text not null, "status" "experiment_status" not null default 'CREATED', "created_by_id" uuid null, constraint "experiments_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "experiments_project_id_config_hash_index" on "experiments" ("project_id", "config_hash");`,
    );
    this.addSql(`create index "experiments_project_id_id_index" on "experiments" ("project_id", "id");`);

    this.addSql(
      `create table "quarantine_records" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "project_id" uuid not null, "config_hash" text not null, "experiment_id" uuid null, "reason" text not null, "evidence" jsonb not null, "failure_metrics" jsonb null, "status" "quarantine_status" not null default 'QUARANTINED', "quarantined_by_id" uuid null, constraint "quarantine_records_pkey" primary key ("id"));`,
    );
    this.addSql(
      `alter table "quarantine_records" add constraint "quarantine_records_project_id_config_hash_unique" unique ("project_id", "config_hash");`,
    );

    this.addSql(
      `create table "reevaluation_requests" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "quarantine_record_id" uuid not null, "reason" text not null, "status" "reevaluation_status" not null default 'PENDING', "requested_by_id" uuid null, "decided_by_id" uuid null, "decided_at" timestamptz null, "notes" text null, constraint "reevaluation_requests_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "reevaluation_requests_quarantine_record_id_status_index" on "reevaluation_requests" ("quarantine_record_id", "status");`,
    );

    this.addSql(
      `create table "evaluations" ("id" uuid not null, "created_at" timestamptz not null default now(), "experiment_id" uuid not null, "metrics" jsonb not null, "ai_verdict" "verdict" not null, "confidence" double precision not null, "checks" jsonb not null, "policy_outcome" "policy_outcome" not null, "policy_results" jsonb null, "human_override" "verdict" null, "override_reason" text null, "overridden_by_id" uuid null, "overridden_at" timestamptz null, "submitted_by_id" uuid null, constraint "evaluations_pkey" primary key ("id"));`,
    );
    this.addSql(`create index "evaluations_experiment_id_id_index" on "evaluations" ("experiment_id", "id");`);

    this.addSql(
      `create table "promotions" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "project_id" uuid not null, "experiment_id" uuid not null, "evaluation_id" uuid not null, "from_tag" "version_tag" not null, "to_tag" "version_tag" not null, "approval_id" uuid not null, "status" "promotion_status" not null default 'PENDING', "reason" text null, "requested_by_id" uuid null, constraint "promotions_pkey" primary key ("id"));`,
    );
    this.addSql(`alter table "promotions" add constraint "promotions_approval_id_unique" unique ("approval_id");`);
    this.addSql(`create index "promotions_project_id_id_index" on "promotions" ("project_id", "id");`);

    this.addSql(
      `create table "comparison_reports" ("id" uuid not null, "created_at" timestamptz not null default now(), "project_id" uuid not null, "experiment_id" uuid not null, "version_id" uuid not null, "promotion_id" uuid null, "metrics" jsonb not null, "recommendation" text not null, "confidence" double precision not null, constraint "comparison_reports_pkey" primary key ("id"));`,
    );
    this.addSql(`create index "comparison_reports_project_id_id_index" on "comparison_reports" ("project_id", "id");`);

    this.addSql(
      `create table "version_history" ("id" uuid not null, "created_at" timestamptz not null default now(), "project_id" uuid not null, "action" "version_action" not null, "from_tag" "version_tag" not null, "to_tag" "version_tag" not null, "actor_id" uuid null, "actor_label" text null, "reason" text not null, "config_hash" text null, constraint "version_history_pkey" primary key ("id"));`,
    );
    this.addSql(`create index "version_history_project_id_id_index" on "version_history" ("project_id", "id");`);

    this.addSql(
      `alter table "baselines" add constraint "baselines_project_id_foreign" foreign key ("project_id") references "projects" ("id") on update cascade on delete cascade;`,
    );

    this.addSql(
      `alter table "policies" add constraint "policies_created_by_id_foreign" foreign key ("created_by_id") references "users" ("id") on update cascade on delete set null;`,
    );

    this.addSql(
      `alter table "project_policies" add constraint "project_policies_project_id_foreign" foreign key ("project_id") references "projects" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "project_policies" add constraint "project_policies_policy_id_foreign" foreign key ("policy_id") references "policies" ("id") on update cascade on delete cascade;`,
    );

    this.addSql(
      `alter table "versions" add constraint "versions_project_id_foreign" foreign key ("project_id") references "projects" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "versions" add constraint "versions_promoted_by_id_foreign" foreign key ("promoted_by_id") references "users" ("id") on update cascade on delete set null;`,
    );

    this.addSql(
      `alter table "experiments" add constraint "experiments_project_id_foreign" foreign key ("project_id") references "projects" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "experiments" add constraint "experiments_version_id_foreign" foreign key ("version_id") references "versions" ("id") on update cascade on delete restrict;`,
    );
    this.addSql(
      `alter table "experiments" add constraint "experiments_created_by_id_foreign" foreign key ("created_by_id") references "users" ("id") on update cascade on delete set null;`,
    );

    this.addSql(
      `alter table "quarantine_records" add constraint "quarantine_records_project_id_foreign" foreign key ("project_id") references "projects" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "quarantine_records" add constraint "quarantine_records_experiment_id_foreign" foreign key ("experiment_id") references "experiments" ("id") on update cascade on delete set null;`,
    );
    this.addSql(
      `alter table "quarantine_records" add constraint "quarantine_records_quarantined_by_id_foreign" foreign key ("quarantined_by_id") references "users" ("id") on update cascade on delete set null;`,
    );

    this.addSql(
      `alter table "reevaluation_requests" add constraint "reevaluation_requests_quarantine_record_id_foreign" foreign key ("quarantine_record_id") references "quarantine_records" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "reevaluation_requests" add constraint "reevaluation_requests_requested_by_id_foreign" foreign key ("requested_by_id") references "users" ("id") on update cascade on delete set null;`,
    );
    this.addSql(
      `alter table "reevaluation_requests" add constraint "reevaluation_requests_decided_by_id_foreign" foreign key ("decided_by_id") references "users" ("id") on update cascade on delete set null;`,
    );

    this.addSql(
      `alter table "evaluations" add constraint "evaluations_experiment_id_foreign" foreign key ("experiment_id") references "experiments" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "evaluations" add constraint "evaluations_overridden_by_id_foreign" foreign key ("overridden_by_id") references "users" ("id") on update cascade on delete set null;`,
    );
    this.addSql(
      `alter table "evaluations" add constraint "evaluations_submitted_by_id_foreign" foreign key ("submitted_by_id") references "users" ("id") on update cascade on delete set null;`,
    );

    this.addSql(
      `alter table "promotions" add constraint "promotions_project_id_foreign" foreign key ("project_id") references "projects" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "promotions" add constraint "promotions_experiment_id_foreign" foreign key ("experiment_id") references "experiments" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "promotions" add constraint "promotions_evaluation_id_foreign" foreign key ("evaluation_id") references "evaluations" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "promotions" add constraint "promotions_approval_id_foreign" foreign key ("approval_id") references "approvals" ("id") on update cascade on delete restrict;`,
    );
    this.addSql(
      `alter table "promotions" add constraint "promotions_requested_by_id_foreign" foreign key ("requested_by_id") references "users" ("id") on update cascade on delete set null;`,
    );

    this.addSql(
      `alter table "comparison_reports" add constraint "comparison_reports_project_id_foreign" foreign key ("project_id") references "projects" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "comparison_reports" add constraint "comparison_reports_experiment_id_foreign" foreign key ("experiment_id") references "experiments" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "comparison_reports" add constraint "comparison_reports_version_id_foreign" foreign key ("version_id") references "versions" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "comparison_reports" add constraint "comparison_reports_promotion_id_foreign" foreign key ("promotion_id") references "promotions" ("id") on update cascade on delete set null;`,
    );

    this.addSql(
      `alter table "version_history" add constraint "version_history_project_id_foreign" foreign key ("project_id") references "projects" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "version_history" add constraint "version_history_actor_id_foreign" foreign key ("actor_id") references "users" ("id") on update cascade on delete set null;`,
    );

    // ---- analysis ----
    this.addSql(`create type "analysis_session_status" as enum ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED');`);
    this.addSql(`create type "analysis_task_type" as enum ('STATIC', 'DYNAMIC', 'GRAPH', 'AI');`);
    this.addSql(`create type "analysis_task_status" as enum ('QUEUED', 'RUNNING', 'COMPLETED', 'FAILED');`);
    this.addSql(
      `create table "analysis_sessions" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "project_id" uuid not null, "user_id" uuid null, "name" text not null, "input" jsonb not null default '{}', "status" "analysis_session_status" not null default 'PENDING', "completed_at" timestamptz null, constraint "analysis_sessions_pkey" primary key ("id"));`,
    );
    this.addSql(`create index "analysis_sessions_project_id_id_index" on "analysis_sessions" ("project_id", "id");`);

    this.addSql(
      `create table "analysis_tasks" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "session_id" uuid not null, "project_id" uuid not null, "type" "analysis_task_type" not null, "status" "analysis_task_status" not null default 'QUEUED', "payload" jsonb not null default '{}', "result" jsonb null, "error" text null, "attempts" int not null default 0, "max_attempts" int not null, "lease_token" uuid null, "lease_expires_at" timestamptz null, "claimed_by" text null, "started_at" timestamptz null, "completed_at" timestamptz null, "duration_ms" int null, constraint "analysis_tasks_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "analysis_tasks_claimable_index" on "analysis_tasks" ("type", "id") where "status" in ('QUEUED', 'RUNNING');`,
    );
    this.addSql(`create index "analysis_tasks_session_id_id_index" on "analysis_tasks" ("session_id", "id");`);

    this.addSql(
      `create table "code_review_results" ("id" uuid not null, "created_at" timestamptz not null default now(), "session_id" uuid not null, "task_id" uuid null, "language" text not null, "score" double precision not null, "vulnerability_count" int not null, "issue_count" int not null, "model_used" text not null, "review_time_ms" int not null, "details" jsonb null, constraint "code_review_results_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "code_review_results_session_id_id_index" on "code_review_results" ("session_id", "id");`,
    );

    this.addSql(
      `create table "artifacts" ("id" uuid not null, "created_at" timestamptz not null default now(), "session_id" uuid not null, "task_id" uuid null, "type" text not null, "uri" text not null, "sha256" text not null, "size_bytes" bigint not null, "expires_at" timestamptz null, constraint "artifacts_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "artifacts_expires_at_index" on "artifacts" ("expires_at") where "expires_at" is not null;`,
    );
    this.addSql(`create index "artifacts_session_id_id_index" on "artifacts" ("session_id", "id");`);

    this.addSql(
      `alter table "analysis_sessions" add constraint "analysis_sessions_project_id_foreign" foreign key ("project_id") references "projects" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "analysis_sessions" add constraint "analysis_sessions_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete set null;`,
    );

    this.addSql(
      `alter table "analysis_tasks" add constraint "analysis_tasks_session_id_foreign" foreign key ("session_id") references "analysis_sessions" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "analysis_tasks" add constraint "analysis_tasks_project_id_foreign" foreign key ("project_id") references "projects" ("id") on update cascade on delete cascade;`,
    );

    this.addSql(
      `alter table "code_review_results" add constraint "code_review_results_session_id_foreign" foreign key ("session_id") references "analysis_sessions" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "code_review_results" add constraint "code_review_results_task_id_foreign" foreign key ("task_id") references "analysis_tasks" ("id") on update cascade on delete set null;`,
    );

    this.addSql(
      `alter table "artifacts" add constraint "artifacts_session_id_foreign" foreign key ("session_id") references "analysis_sessions" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "artifacts" add constraint "artifacts_task_id_foreign" foreign key ("task_id") references "analysis_tasks" ("id") on update cascade on delete set null;`,
    );
  }

  override async down(): Promise<void> {
    for (const table of [
      'artifacts',
      'code_review_results',
      'analysis_tasks',
      'analysis_sessions',
      'comparison_reports',
      'promotions',
      'evaluations',
      'reevaluation_requests',
      'quarantine_records',
      'experiments',
      'version_history',
      'versions',
      'project_policies',
      'policies',
      'baselines',
    ]) {
      this.addSql(`drop table if exists "${table}" cascade;`);
    }
    for (const type of [
      'baseline_operator',
      'version_tag',
      'experiment_status',
      'quarantine_status',
      'reevaluation_status',
      'verdict',
      'policy_outcome',
      'promotion_status',
      'version_action',
      'analysis_session_status',
      'analysis_task_type',
      'analysis_task_status',
    ]) {
      this.addSql(`drop type if exists "${type}";`);
    }
  }
}
