import { v7 } from 'uuid';

/**
 * New primary keys are UUIDv7: time-ordered, so b-tree inserts stay at the right edge
 * of the index and `ORDER BY id` is creation order, which keyset pagination uses.
 */
export const newId = (): string => v7();
