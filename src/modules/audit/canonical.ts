/**
 * Canonical JSON as RFC 8785 (JSON Canonicalization Scheme) defines it for the values
 * Steward hashes: object members sorted by their names' UTF-16 code units, no
 * whitespace, strings and numbers written as ECMAScript's JSON.stringify writes them
 * (which is what JCS prescribes). Members whose value is `undefined` are left out, as
 * JSON.stringify leaves them out; a value with `toJSON` (a Date) is written as its JSON.
 * Non-finite numbers and bigints have no JSON form and are refused (TypeError).
 *
 * Small enough to own: the audit chain's hashes depend on every byte of it, so it must
 * never change under us with a dependency update.
 */
export function canonicalize(value: unknown): string {
  return write(value);
}

function write(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonical JSON has no form for ${value}`);
      return JSON.stringify(value);
    case 'object': {
      const json = (value as { toJSON?: () => unknown }).toJSON;
      if (typeof json === 'function') return write(json.call(value));
      if (Array.isArray(value))
        return `[${value.map((v) => (v === undefined || typeof v === 'function' ? 'null' : write(v))).join(',')}]`;
      const record = value as Record<string, unknown>;
      const names = Object.keys(record)
        .filter((k) => record[k] !== undefined && typeof record[k] !== 'function')
        .sort();
      return `{${names.map((k) => `${JSON.stringify(k)}:${write(record[k])}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonical JSON has no form for a ${typeof value}`);
  }
}
