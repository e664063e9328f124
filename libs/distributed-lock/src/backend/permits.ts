import { Messages } from '../distributed-lock.messages';
import { argumentError, type ErrorFactory } from '../options/validators';
import { permitKey } from './held-key';

/**
 * Concurrency limits (counting semaphores) in one place: a key with `limit` N has N permits, each an
 * independently locked key `permitKey(key, i)` (permit 0 is the key itself). A backend takes any
 * free one with the same safety as a mutex key; docs/SAFETY.md has the argument.
 * @internal
 */

/** The largest `limit`: every permit is a key a backend may try in one operation. */
export const MAX_LIMIT = 100;

/**
 * Checks a `limit` option: an integer from 1 to {@link MAX_LIMIT}; `undefined` is 1.
 * @throws InvalidLockArgumentError (or what `fail` builds) with field `limit`
 */
export function checkLimit(value: unknown, fail: ErrorFactory = argumentError): number {
  if (value === undefined) return 1;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_LIMIT) {
    throw fail('limit', Messages.badLimit(value, MAX_LIMIT));
  }
  return value;
}

/** The stored keys of every permit of `key`: `permitKey(key, 0)` … `permitKey(key, limit - 1)`. */
export function permitKeys(key: string, limit: number): string[] {
  const keys = new Array<string>(limit);
  for (let i = 0; i < limit; i += 1) keys[i] = permitKey(key, i);
  return keys;
}

/** The limit a backend was asked for (1 when none was given). */
export function limitOf(options: { limit?: number } | undefined): number {
  return options?.limit ?? 1;
}
