import { BigIntType, Check, Entity, PrimaryKey, Property, type Opt } from '@mikro-orm/core';

/**
 * The chain's last link (one row, id 1), moved forward by the sealer in the same
 * transaction as the links it adds. Verification walks the chain up to it, so events cut
 * off the end of the chain are noticed as surely as ones taken from its middle.
 */
@Entity({ tableName: 'audit_chain_head' })
@Check({ name: 'audit_chain_head_single_check', expression: '"id" = 1' })
export class AuditChainHead {
  @PrimaryKey({ type: 'smallint', autoincrement: false }) id!: number;
  @Property({ type: new BigIntType('number'), default: 0 }) seq: Opt<number> = 0;
  @Property({ type: 'text' }) hash!: string;
  @Property({ type: 'timestamptz', defaultRaw: 'now()' }) updatedAt: Opt<Date> = new Date();
}
