import { MAX_KEY_LENGTH } from '../distributed-lock.constants';
import { argumentError } from '../options/validators';

/**
 * Turns a key or key list into a de-duplicated list of valid keys.
 * @throws InvalidLockArgumentError for an empty list, a non-string or empty key, or an over-long key
 * @internal
 */
export function normalizeKeys(key: unknown): string[] {
  const list: unknown[] = Array.isArray(key) ? key : [key];
  if (list.length === 0) throw argumentError('key', 'must not be an empty list');
  const out: string[] = [];
  list.forEach((k, i) => {
    const field = Array.isArray(key) ? `key[${i}]` : 'key';
    if (typeof k !== 'string')
      throw argumentError(
        field,
        `must be a non-empty string, got ${k === null ? 'null' : typeof k}`,
      );
    if (k.length === 0) throw argumentError(field, 'must be a non-empty string, got ""');
    if (k.length > MAX_KEY_LENGTH) {
      throw argumentError(field, `must be at most ${MAX_KEY_LENGTH} characters, got ${k.length}`);
    }
    if (!out.includes(k)) out.push(k);
  });
  return out;
}
