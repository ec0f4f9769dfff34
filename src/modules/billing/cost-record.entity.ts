import { Entity, Index, ManyToOne, Property, type Ref } from '@mikro-orm/core';
import { BaseEntity } from '../../shared/base.entity.js';
import { User } from '../identity/user.entity.js';

/** One per answered call (cost_tracking), attributed to user, project, agent and conversation. */
@Entity({ tableName: 'cost_records' })
@Index({ properties: ['user', 'createdAt'] })
@Index({ properties: ['projectId'] })
export class CostRecord extends BaseEntity {
  @ManyToOne(() => User, { ref: true, deleteRule: 'cascade' }) user!: Ref<User>;
  @Property({ type: 'uuid', nullable: true }) projectId?: string | null;
  @Property({ type: 'uuid', nullable: true }) conversationId?: string | null;
  @Property({ type: 'text', nullable: true }) agentType?: string | null;
  @Property({ type: 'uuid' }) providerId!: string;
  @Property({ type: 'text' }) provider!: string;
  @Property({ type: 'text' }) model!: string;
  @Property({ type: 'integer' }) inputTokens!: number;
  @Property({ type: 'integer' }) outputTokens!: number;
  @Property({ type: 'decimal', precision: 18, scale: 6 }) inputCost!: string;
  @Property({ type: 'decimal', precision: 18, scale: 6 }) outputCost!: string;
  @Property({ type: 'decimal', precision: 18, scale: 6 }) totalCost!: string;
  @Property({ type: 'uuid' }) promptLogId!: string;
}
