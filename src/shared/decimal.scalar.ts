import { GraphQLError, GraphQLScalarType, Kind } from 'graphql';

/** Digits before the point that numeric(18,6) holds. */
const INTEGER_DIGITS = 12;
/** Digits after the point: money is kept to the micro-dollar. */
export const DECIMAL_SCALE = 6;

const DECIMAL = new RegExp(`^(\\d{1,${INTEGER_DIGITS}})(?:\\.(\\d{1,${DECIMAL_SCALE}}))?$`);

/**
 * `"12.5"` -> `"12.500000"`; null when `value` is not a non-negative decimal of at most
 * 12 integer digits and 6 decimals (a string, or a safe integer for convenience).
 * Floats are refused: 0.1 + 0.2 is not money.
 */
export function normalizeDecimal(value: unknown): string | null {
  let text: string;
  if (typeof value === 'string') text = value.trim();
  else if (typeof value === 'number' && Number.isSafeInteger(value)) text = String(value);
  else if (typeof value === 'bigint') text = value.toString();
  else return null;
  const m = DECIMAL.exec(text);
  if (!m) return null;
  const whole = m[1]!.replace(/^0+(?=\d)/, '');
  return `${whole}.${(m[2] ?? '').padEnd(DECIMAL_SCALE, '0')}`;
}

const problem = (value: unknown) =>
  `Decimal must be a non-negative decimal string with at most ${DECIMAL_SCALE} decimal places, like "12.500000" (got ${JSON.stringify(value)?.slice(0, 40)})`;

/**
 * The contract's `Decimal`: exact money as a string like `"12.500000"` (never a float).
 * Input: a non-negative decimal string with at most 6 decimal places (an integer literal
 * is accepted too), normalised to 6 places; anything else is BAD_USER_INPUT before a
 * resolver runs. Output: the normalised string (PostgreSQL's numeric(18,6) already is).
 */
export const DecimalScalar = new GraphQLScalarType<string, string>({
  name: 'Decimal',
  description:
    'An exact non-negative decimal as a string, e.g. "12.500000" (at most 6 decimal places). Money is in US dollars.',
  serialize(value) {
    const out = normalizeDecimal(value);
    if (out === null) throw new GraphQLError(`Decimal cannot represent ${JSON.stringify(value)?.slice(0, 40)}`);
    return out;
  },
  parseValue(value) {
    const out = normalizeDecimal(value);
    if (out === null) throw new GraphQLError(problem(value), { extensions: { code: 'BAD_USER_INPUT' } });
    return out;
  },
  parseLiteral(ast) {
    const value = ast.kind === Kind.STRING ? ast.value : ast.kind === Kind.INT ? Number(ast.value) : undefined;
    const out = value === undefined ? null : normalizeDecimal(value);
    if (out === null)
      throw new GraphQLError(
        problem(ast.kind === Kind.STRING || ast.kind === Kind.INT || ast.kind === Kind.FLOAT ? ast.value : ast.kind),
        { extensions: { code: 'BAD_USER_INPUT' } },
      );
    return out;
  },
});
