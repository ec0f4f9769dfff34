import { Entity, PrimaryKey, Property, type Opt } from '@mikro-orm/core';

/**
 * One row per scheduled job: the lease that makes a run happen once across all
 * instances sharing the database, and the job's last outcome for operators.
 */
@Entity({ tableName: 'job_state' })
export class JobState {
  @PrimaryKey({ type: 'text' }) name!: string;
  @Property({ type: 'timestamptz' }) lockedUntil!: Date;
  @Property({ type: 'timestamptz', nullable: true }) lastStartedAt?: Date;
  @Property({ type: 'timestamptz', nullable: true }) lastFinishedAt?: Date;
  @Property({ type: 'integer', default: 0 }) runs: Opt<number> = 0;
  @Property({ type: 'integer', default: 0 }) failures: Opt<number> = 0;
  @Property({ type: 'text', nullable: true }) lastError?: string;
  @Property({ type: 'text', nullable: true }) lastOwner?: string;
}
