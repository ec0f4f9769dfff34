import { Migration } from '@mikro-orm/migrations';

export class Migration20261123051252_projects_and_work extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create type "project_status" as enum ('ACTIVE', 'ARCHIVED', 'DELETED');`);
    this.addSql(
      `create type "task_status" as enum ('PENDING', 'ASSIGNED', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED');`,
    );
    this.addSql(`create type "task_priority" as enum ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL');`);
    this.addSql(`create type "project_role" as enum ('OWNER', 'MAINTAINER', 'CONTRIBUTOR', 'VIEWER');`);
    this.addSql(`create type "notification_type" as enum ('ALERT', 'APPROVAL', 'STATUS', 'ERROR', 'INFO');`);
    this.addSql(`create type "notification_priority" as enum ('LOW', 'NORMAL', 'HIGH', 'URGENT');`);
    this.addSql(`create type "notification_status" as enum ('UNREAD', 'READ', 'ARCHIVED');`);
    this.addSql(`create type "notification_channel" as enum ('WEB', 'EMAIL', 'PUSH', 'SMS');`);
    this.addSql(`create type "delivery_status" as enum ('PENDING', 'SENT', 'FAILED');`);
    this.addSql(`create type "approval_status" as enum ('PENDING', 'APPROVED', 'REJECTED', 'EXPIRED');`);
    this.addSql(
      `create table "project_templates" ("id" uuid not null, "created_at" timestamptz not null default now(), "key" text not null, "name" text not null, "description" text null, "defaults" jsonb not null default '{}', constraint "project_templates_pkey" primary key ("id"));`,
    );
    this.addSql(`alter table "project_templates" add constraint "project_templates_key_unique" unique ("key");`);

    this.addSql(
      `create table "projects" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "name" text not null, "description" text null, "owner_id" uuid not null, "status" "project_status" not null default 'ACTIVE', "template_id" uuid null, "settings" jsonb not null default '{}', "git_repo_url" text null, "last_accessed_at" timestamptz null, constraint "projects_pkey" primary key ("id"));`,
    );
    this.addSql(`create index "projects_owner_id_status_index" on "projects" ("owner_id", "status");`);

    this.addSql(
      `create table "tasks" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "title" text not null, "description" text null, "status" "task_status" not null default 'PENDING', "priority" "task_priority" not null default 'MEDIUM', "project_id" uuid null, "parent_id" uuid null, "created_by_id" uuid not null, "due_date" timestamptz null, "estimated_minutes" int null, "actual_minutes" int null, "started_at" timestamptz null, "completed_at" timestamptz null, "execution_time_seconds" int null, "tags" text[] not null default '{}', "allowed_intents" text[] not null default '{}', "scope" text null, "assigned_agents" text[] not null default '{}', "primary_agent" text null, "results" jsonb null, "metadata" jsonb not null default '{}', "overdue_notified_at" timestamptz null, constraint "tasks_pkey" primary key ("id"), constraint tasks_critical_estimate_check check ("priority" <> 'CRITICAL' OR "estimated_minutes" IS NULL OR "estimated_minutes" <= 1440));`,
    );
    this.addSql(`create index "tasks_tags_index" on "tasks" using gin ("tags");`);
    this.addSql(
      `create index "tasks_fulltext_index" on "tasks" using gin (to_tsvector('english', "title" || ' ' || coalesce("description", '')));`,
    );
    this.addSql(`create index "tasks_parent_id_index" on "tasks" ("parent_id");`);
    this.addSql(`create index "tasks_due_date_index" on "tasks" ("due_date");`);
    this.addSql(`create index "tasks_created_by_id_status_index" on "tasks" ("created_by_id", "status");`);
    this.addSql(`create index "tasks_project_id_status_index" on "tasks" ("project_id", "status");`);

    this.addSql(
      `create table "task_dependencies" ("task_id" uuid not null, "depends_on_id" uuid not null, "created_at" timestamptz not null default now(), constraint "task_dependencies_pkey" primary key ("task_id", "depends_on_id"));`,
    );
    this.addSql(`create index "task_dependencies_depends_on_id_index" on "task_dependencies" ("depends_on_id");`);

    this.addSql(
      `create table "task_assignees" ("id" uuid not null, "created_at" timestamptz not null default now(), "task_id" uuid not null, "user_id" uuid not null, "assigned_by_id" uuid null, "assigned_at" timestamptz not null default now(), "active" boolean not null default true, constraint "task_assignees_pkey" primary key ("id"));`,
    );
    this.addSql(`create index "task_assignees_user_id_active_index" on "task_assignees" ("user_id", "active");`);
    this.addSql(
      `alter table "task_assignees" add constraint "task_assignees_task_id_user_id_unique" unique ("task_id", "user_id");`,
    );

    this.addSql(
      `create table "project_members" ("id" uuid not null, "created_at" timestamptz not null default now(), "project_id" uuid not null, "user_id" uuid not null, "role" "project_role" not null, "added_by_id" uuid null, constraint "project_members_pkey" primary key ("id"));`,
    );
    this.addSql(`create index "project_members_user_id_index" on "project_members" ("user_id");`);
    this.addSql(
      `alter table "project_members" add constraint "project_members_project_id_user_id_unique" unique ("project_id", "user_id");`,
    );

    this.addSql(
      `create table "project_files" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "project_id" uuid not null, "path" text not null, "file_type" text null, "size_bytes" bigint null, "sha256" text null, "created_by_agent" text null, "created_by_id" uuid null, constraint "project_files_pkey" primary key ("id"));`,
    );
    this.addSql(
      `alter table "project_files" add constraint "project_files_project_id_path_unique" unique ("project_id", "path");`,
    );

    this.addSql(
      `create table "git_branches" ("id" uuid not null, "created_at" timestamptz not null default now(), "project_id" uuid not null, "name" text not null, "created_by_agent" text null, "is_merged" boolean not null default false, "merged_at" timestamptz null, constraint "git_branches_pkey" primary key ("id"));`,
    );
    this.addSql(
      `alter table "git_branches" add constraint "git_branches_project_id_name_unique" unique ("project_id", "name");`,
    );

    this.addSql(
      `create table "notifications" ("id" uuid not null, "created_at" timestamptz not null default now(), "user_id" uuid not null, "title" text not null, "message" text null, "type" "notification_type" not null, "priority" "notification_priority" not null default 'NORMAL', "status" "notification_status" not null default 'UNREAD', "channel" "notification_channel" not null default 'WEB', "data" jsonb null, "read_at" timestamptz null, "scheduled_for" timestamptz null, "delivery_status" "delivery_status" not null default 'PENDING', "delivery_attempts" int not null default 0, "last_delivery_error" text null, "next_attempt_at" timestamptz not null default now(), "sent_at" timestamptz null, constraint "notifications_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "notifications_delivery_due_index" on "notifications" ("next_attempt_at") where "delivery_status" = 'PENDING';`,
    );
    this.addSql(`create index "notifications_user_id_status_index" on "notifications" ("user_id", "status");`);

    this.addSql(
      `create table "file_attachments" ("id" uuid not null, "created_at" timestamptz not null default now(), "task_id" uuid not null, "uploaded_by_id" uuid null, "stored_name" text not null, "original_name" text not null, "mime_type" text not null, "size_bytes" bigint not null, "sha256" text null, "storage_path" text not null, "uploaded_at" timestamptz null, "expires_at" timestamptz null, "is_encrypted" boolean not null default false, constraint "file_attachments_pkey" primary key ("id"));`,
    );
    this.addSql(`create index "file_attachments_expires_at_index" on "file_attachments" ("expires_at");`);
    this.addSql(`create index "file_attachments_task_id_index" on "file_attachments" ("task_id");`);

    this.addSql(
      `create table "approvals" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "task_id" uuid null, "project_id" uuid null, "action_type" text not null, "details" jsonb null, "status" "approval_status" not null default 'PENDING', "requested_by_id" uuid null, "requested_by_actor" text null, "decided_by_id" uuid null, "decided_at" timestamptz null, "expires_at" timestamptz null, "notes" text null, constraint "approvals_pkey" primary key ("id"), constraint approvals_decision_check check (("status" = 'PENDING') = ("decided_at" IS NULL)), constraint approvals_subject_check check ("task_id" IS NOT NULL OR "project_id" IS NOT NULL));`,
    );
    this.addSql(
      `create index "approvals_pending_expiry_index" on "approvals" ("expires_at") where "status" = 'PENDING';`,
    );
    this.addSql(`create index "approvals_requested_by_id_status_index" on "approvals" ("requested_by_id", "status");`);
    this.addSql(`create index "approvals_task_id_index" on "approvals" ("task_id");`);
    this.addSql(`create index "approvals_project_id_status_index" on "approvals" ("project_id", "status");`);

    this.addSql(
      `alter table "projects" add constraint "projects_owner_id_foreign" foreign key ("owner_id") references "users" ("id") on update cascade on delete restrict;`,
    );
    this.addSql(
      `alter table "projects" add constraint "projects_template_id_foreign" foreign key ("template_id") references "project_templates" ("id") on update cascade on delete set null;`,
    );

    this.addSql(
      `alter table "tasks" add constraint "tasks_project_id_foreign" foreign key ("project_id") references "projects" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "tasks" add constraint "tasks_parent_id_foreign" foreign key ("parent_id") references "tasks" ("id") on update cascade on delete set null;`,
    );
    this.addSql(
      `alter table "tasks" add constraint "tasks_created_by_id_foreign" foreign key ("created_by_id") references "users" ("id") on update cascade on delete restrict;`,
    );

    this.addSql(
      `alter table "task_dependencies" add constraint "task_dependencies_task_id_foreign" foreign key ("task_id") references "tasks" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "task_dependencies" add constraint "task_dependencies_depends_on_id_foreign" foreign key ("depends_on_id") references "tasks" ("id") on update cascade on delete cascade;`,
    );

    this.addSql(
      `alter table "task_assignees" add constraint "task_assignees_task_id_foreign" foreign key ("task_id") references "tasks" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "task_assignees" add constraint "task_assignees_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "task_assignees" add constraint "task_assignees_assigned_by_id_foreign" foreign key ("assigned_by_id") references "users" ("id") on update cascade on delete set null;`,
    );

    this.addSql(
      `alter table "project_members" add constraint "project_members_project_id_foreign" foreign key ("project_id") references "projects" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "project_members" add constraint "project_members_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "project_members" add constraint "project_members_added_by_id_foreign" foreign key ("added_by_id") references "users" ("id") on update cascade on delete set null;`,
    );

    this.addSql(
      `alter table "project_files" add constraint "project_files_project_id_foreign" foreign key ("project_id") references "projects" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "project_files" add constraint "project_files_created_by_id_foreign" foreign key ("created_by_id") references "users" ("id") on update cascade on delete set null;`,
    );

    this.addSql(
      `alter table "git_branches" add constraint "git_branches_project_id_foreign" foreign key ("project_id") references "projects" ("id") on update cascade on delete cascade;`,
    );

    this.addSql(
      `alter table "notifications" add constraint "notifications_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`,
    );

    this.addSql(
      `alter table "file_attachments" add constraint "file_attachments_task_id_foreign" foreign key ("task_id") references "tasks" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "file_attachments" add constraint "file_attachments_uploaded_by_id_foreign" foreign key ("uploaded_by_id") references "users" ("id") on update cascade on delete set null;`,
    );

    this.addSql(
      `alter table "approvals" add constraint "approvals_task_id_foreign" foreign key ("task_id") references "tasks" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "approvals" add constraint "approvals_project_id_foreign" foreign key ("project_id") references "projects" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "approvals" add constraint "approvals_requested_by_id_foreign" foreign key ("requested_by_id") references "users" ("id") on update cascade on delete set null;`,
    );
    this.addSql(
      `alter table "approvals" add constraint "approvals_decided_by_id_foreign" foreign key ("decided_by_id") references "users" ("id") on update cascade on delete set null;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "projects" drop constraint "projects_template_id_foreign";`);

    this.addSql(`alter table "tasks" drop constraint "tasks_project_id_foreign";`);

    this.addSql(`alter table "project_members" drop constraint "project_members_project_id_foreign";`);

    this.addSql(`alter table "project_files" drop constraint "project_files_project_id_foreign";`);

    this.addSql(`alter table "git_branches" drop constraint "git_branches_project_id_foreign";`);

    this.addSql(`alter table "approvals" drop constraint "approvals_project_id_foreign";`);

    this.addSql(`alter table "tasks" drop constraint "tasks_parent_id_foreign";`);

    this.addSql(`alter table "task_dependencies" drop constraint "task_dependencies_task_id_foreign";`);

    this.addSql(`alter table "task_dependencies" drop constraint "task_dependencies_depends_on_id_foreign";`);

    this.addSql(`alter table "task_assignees" drop constraint "task_assignees_task_id_foreign";`);

    this.addSql(`alter table "file_attachments" drop constraint "file_attachments_task_id_foreign";`);

    this.addSql(`alter table "approvals" drop constraint "approvals_task_id_foreign";`);

    this.addSql(`drop table if exists "project_templates" cascade;`);

    this.addSql(`drop table if exists "projects" cascade;`);

    this.addSql(`drop table if exists "tasks" cascade;`);

    this.addSql(`drop table if exists "task_dependencies" cascade;`);

    this.addSql(`drop table if exists "task_assignees" cascade;`);

    this.addSql(`drop table if exists "project_members" cascade;`);

    this.addSql(`drop table if exists "project_files" cascade;`);

    this.addSql(`drop table if exists "git_branches" cascade;`);

    this.addSql(`drop table if exists "notifications" cascade;`);

    this.addSql(`drop table if exists "file_attachments" cascade;`);

    this.addSql(`drop table if exists "approvals" cascade;`);

    this.addSql(`drop type "project_status";`);
    this.addSql(`drop type "task_status";`);
    this.addSql(`drop type "task_priority";`);
    this.addSql(`drop type "project_role";`);
    this.addSql(`drop type "notification_type";`);
    this.addSql(`drop type "notification_priority";`);
    this.addSql(`drop type "notification_status";`);
    this.addSql(`drop type "notification_channel";`);
    this.addSql(`drop type "delivery_status";`);
    this.addSql(`drop type "approval_status";`);
  }
}
