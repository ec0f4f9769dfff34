import { BadInputError } from '../../shared/errors.js';

/**
 * Money is exact: integer micro-dollars (bigint) in code, numeric(18,6) in PostgreSQL,
 * "12.500000" strings at the edges. Never a float.
 */
export type Micros = bigint;

const DECIMAL = /^(\d{1,12})(?:\.(\d{1,6}))?$/;

export function toMicros(value: string | number | null | undefined, field = 'amount'): Micros {
  if (value === null || value === undefined) return 0n;
  const text = typeof value === 'number' ? value.toFixed(6) : value.trim();
  const m = DECIMAL.exec(text);
  if (!m)
    throw BadInputError.field(field, 'must be a non-negative decimal with at most 6 decimal places, like "12.500000"');
  return BigInt(m[1]!) * 1_000_000n + BigInt((m[2] ?? '').padEnd(6, '0'));
}

export function formatMicros(micros: Micros): string {
  const sign = micros < 0n ? '-' : '';
  const abs = micros < 0n ? -micros : micros;
  return `${sign}${abs / 1_000_000n}.${(abs % 1_000_000n).toString().padStart(6, '0')}`;
}

/**
 * The price of `tokens` at `pricePer1k` micro-dollars per 1,000 tokens, rounded UP to
 * the micro-dollar: a reservation or a charge never comes out below the true cost.
 */
export function costOf(tokens: number, pricePer1k: Micros): Micros {
  const n = BigInt(tokens) * pricePer1k;
  return (n + 999n) / 1000n;
}

/** The percentage `spent` is of `limit`, floored (for 80/90/100% alerts). */
export const percentOf = (spent: Micros, limit: Micros): number => (limit > 0n ? Number((spent * 100n) / limit) : 0);
