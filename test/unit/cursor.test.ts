import { describe, expect, it } from 'vitest';

import { BY_ID, decodeCursor, encodeCursor, NEWEST_FIRST, type SortKey } from '../../src/shared/connection.js';
import { BadInputError } from '../../src/shared/errors.js';

/** Cursors are the client's to send back: only what could have come from us is accepted. */
const ID = '0b6f3c9e-1d2a-4f5b-8c7d-9e0f1a2b3c4d';
const BY_DUE_DATE: SortKey = { property: 'dueDate', direction: 'ASC', type: 'timestamptz', nulls: `'infinity'` };
const BY_POSITION: SortKey = { property: 'position', direction: 'ASC', type: 'int' };

const refused = (cursor: string, sort: SortKey) => {
  expect(() => decodeCursor(cursor, sort)).toThrow(BadInputError);
  expect(() => decodeCursor(cursor, sort)).toThrow('cursor: is not a cursor of this list');
};

describe('cursors', () => {
  it('reads back what it wrote', () => {
    expect(decodeCursor(encodeCursor([ID]), BY_ID)).toEqual([ID]);
    const at = '2030-01-01 00:00:00.123004+00'; // PostgreSQL's text of a timestamptz, microseconds kept
    expect(decodeCursor(encodeCursor([at, ID]), NEWEST_FIRST)).toEqual([at, ID]);
    expect(decodeCursor(encodeCursor(['2030-01-01T00:00:00.123Z', ID]), NEWEST_FIRST)).toEqual([
      '2030-01-01T00:00:00.123Z',
      ID,
    ]);
    expect(decodeCursor(encodeCursor(['42', ID]), BY_POSITION)).toEqual(['42', ID]);
  });

  it('accepts a null sort value only for a key declared nullable', () => {
    expect(decodeCursor(encodeCursor([null, ID]), BY_DUE_DATE)).toEqual([null, ID]);
    refused(encodeCursor([null, ID]), NEWEST_FIRST);
  });

  it("refuses garbage, the wrong number of values, and values that are not of the sort key's type", () => {
    refused('%%% not base64 %%%', BY_ID);
    refused(Buffer.from('{"a":1}').toString('base64url'), BY_ID);
    refused(encodeCursor([ID, ID]), BY_ID);
    refused(encodeCursor(['not-a-uuid']), BY_ID);
    refused(encodeCursor(['yesterday', ID]), NEWEST_FIRST);
    refused(encodeCursor(['2030-01-01T00:00:00Z', 'not-a-uuid']), NEWEST_FIRST);
    refused(encodeCursor(['1e3', ID]), BY_POSITION);
    refused(encodeCursor(['99999999999', ID]), BY_POSITION); // beyond int
    refused(encodeCursor([{ id: 1 } as never, ID]), NEWEST_FIRST);
  });
});
