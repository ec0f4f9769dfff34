/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

/**
 * Text PostgreSQL can store: no U+0000 (text and jsonb refuse it, and the statement fails)
 * and no lone UTF-16 surrogate (it has no UTF-8 form: the driver would silently store
 * U+FFFD instead of what was sent). What is wrong with it, or null.
 */
export function unstorableCharacter(text: string): string | null {
  if (text.includes('\u0000')) return 'U+0000';
  if (LONE_SURROGATE.test(text)) return 'a lone surrogate';
  return null;
}

/**
 * The first string in `value` (strings, arrays, object keys and values, at any depth)
 * that PostgreSQL cannot store, with its path and why; null when there is none.
 */
export function findUnstorable(value: unknown, path: string): { path: string; reason: string } | null {
  if (typeof value === 'string') {
    const reason = unstorableCharacter(value);
    return reason ? { path, reason } : null;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findUnstorable(value[i], `${path}[${i}]`);
      if (found) return found;
    }
    return null;
  }
  if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const keyReason = unstorableCharacter(k);
      if (keyReason) return { path: `${path} (a key)`, reason: keyReason };
      const found = findUnstorable(v, `${path}.${k}`);
      if (found) return found;
    }
  }
  return null;
}

/**
 * `text` in a form PostgreSQL always stores, for what must be kept whatever it holds
 * (log lines): U+0000 written as the six characters `\u0000`, lone surrogates as U+FFFD.
 */
export function storableForm(text: string): string {
  const escaped = text.includes('\u0000') ? text.replaceAll('\u0000', '\\u0000') : text;
  return LONE_SURROGATE.test(escaped) ? escaped.replace(LONE_SURROGATES, '\uFFFD') : escaped;
}

/** `value` with every string in it (keys included, at any depth) in its storable form. */
export function storableDeep<T>(value: T): T {
  if (typeof value === 'string') return storableForm(value) as T;
  if (Array.isArray(value)) return value.map(storableDeep) as T;
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[storableForm(k)] = storableDeep(v);
    return out as T;
  }
  return value;
}
