import { Entity, Index, ManyToOne, Property, type Ref } from '@mikro-orm/core';
import { BaseEntity } from '../../shared/base.entity.js';
import { User } from '../identity/user.entity.js';

/**
 * A call in flight: the worst case it may cost, held against the user's counters until
 * the call settles (actual usage) or fails (released). If the instance dies mid-call, a
 * job settles a sent call past `expiresAt` at its reserved amount and releases a
 * never-sent one, so nothing stays reserved forever and nothing sent is free.
 */
@Entity({ tableName: 'quota_reservations' })
@Index({ properties: ['expiresAt'] })
export class QuotaReservation extends BaseEntity {
  @ManyToOne(() => User, { ref: true, deleteRule: 'cascade' }) user!: Ref<User>;
  @Property({ type: 'integer' }) tokens!: number;
  @Property({ type: 'decimal', precision: 18, scale: 6 }) costUsd!: string;
  /** The period starts the reservation was counted in: { HOUR, DAY, MONTH } → ISO timestamps. */
  @Property({ type: 'jsonb' }) periods!: Record<string, string>;
  @Property({ type: 'timestamptz' }) expiresAt!: Date;
  /** When the call was sent to the provider: from then on it costs money, whatever happens to this instance. */
  @Property({ type: 'timestamptz', nullable: true }) sentAt?: Date | null;
  /** What the expiry job records of a sent call whose instance was lost (see SentCall). */
  @Property({ type: 'jsonb', nullable: true }) call?: Record<string, unknown> | null;
}
