import { MAX_TIMER_MS } from '../distributed-lock.constants';
import { Messages } from '../distributed-lock.messages';
import { DistributedLockConfigError } from '../errors/distributed-lock-config.error';
import { InvalidLockArgumentError } from '../errors/invalid-lock-argument.error';

/** Builds the typed error a validator throws; lets call-argument checks throw a subclass. */
export type ErrorFactory = (field: string, message: string) => DistributedLockConfigError;

/** Errors for invalid module or decorator options. @internal */
export const configError: ErrorFactory = (field, message) =>
  new DistributedLockConfigError(field, message);

/** Errors for invalid call arguments (a subclass, same `field`). @internal */
export const argumentError: ErrorFactory = (field, message) =>
  new InvalidLockArgumentError(field, message);

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value == null)
    return String(value);
  return typeof value;
}

/**
 * Checks that `value` is an integer in `[min, max]` and returns it.
 * @internal
 */
export function checkInteger(
  field: string,
  value: unknown,
  min: number,
  max: number = MAX_TIMER_MS,
  fail: ErrorFactory = configError,
): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw fail(field, `must be an integer from ${min} to ${max} (ms), got ${describe(value)}`);
  }
  return value;
}

/**
 * Checks that `value` is a finite number in `[min, max]` and returns it.
 * @internal
 */
export function checkNumber(
  field: string,
  value: unknown,
  min: number,
  max: number,
  fail: ErrorFactory = configError,
): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw fail(field, `must be a number from ${min} to ${max}, got ${describe(value)}`);
  }
  return value;
}

/**
 * Checks an optional boolean.
 * @internal
 */
export function checkBoolean(
  field: string,
  value: unknown,
  fail: ErrorFactory = configError,
): boolean {
  if (typeof value !== 'boolean')
    throw fail(field, `must be true or false, got ${describe(value)}`);
  return value;
}

/**
 * Checks a lock TTL: an integer of ms, and at least `minTtl`, the smallest TTL that leaves any
 * validity after clock drift (a shorter one could never be granted, whatever the store answers).
 * @internal
 */
export function checkTtl(
  field: string,
  value: unknown,
  minTtl: number,
  fail: ErrorFactory = configError,
): number {
  const ttl = checkInteger(field, value, 1, undefined, fail);
  if (ttl < minTtl) throw fail(field, Messages.ttlTooShort(ttl, minTtl));
  return ttl;
}
