import { randomFillSync } from 'node:crypto';

const BYTES = 16;
/** Length of the secret part of a lock value: 128 bits, hex. */
const SECRET_LENGTH = BYTES * 2;
/** Between the secret (and the optional `@<since>`) and the holder's identity in a stored value. */
const SEPARATOR = '/';
/** Before the epoch ms a leadership began, right after the secret. */
const SINCE = '@';
/** Secrets drawn per refill. */
const BATCH = 256;
const pool = Buffer.allocUnsafe(BYTES * BATCH);
/** `pool` as hex, converted once per refill: one conversion per value cost more than the draw. */
let hex = '';
let offset = BATCH;

/**
 * A new lock value: 128 bits from the CSPRNG, hex, then (when `since` is given) `'@'` and the epoch
 * ms a leadership began, then (when `identity` is given) `'/'` and the holder's identity, so a store
 * keeps who holds a key, and since when, in the same write that takes it (no extra round trip).
 * Only the whole value proves ownership; {@link holderOf} and {@link sinceOf} read the identity and
 * the time back and never return the secret part. Drawn from a pool refilled 256 values at a time,
 * because one `randomBytes` call per lock cost about a tenth of a lock's CPU time.
 * @internal
 */
export function newLockValue(identity?: string, since?: number): string {
  if (offset === BATCH) {
    randomFillSync(pool);
    hex = pool.toString('hex');
    offset = 0;
  }
  let value = hex.slice(offset * SECRET_LENGTH, (offset + 1) * SECRET_LENGTH);
  offset += 1;
  if (since !== undefined) value += SINCE + String(Math.floor(since));
  return identity ? value + SEPARATOR + identity : value;
}

/** Where the identity starts in `value` (after the secret and any `@<since>`), or -1. */
function identityStart(value: string): number {
  let i = SECRET_LENGTH;
  if (value[i] === SINCE) {
    i += 1;
    while (i < value.length && value.charCodeAt(i) >= 48 && value.charCodeAt(i) <= 57) i += 1;
  }
  return value[i] === SEPARATOR && value.length > i + 1 ? i + 1 : -1;
}

/**
 * The holder identity stored in a lock value by {@link newLockValue}, or `''` when it has none.
 * Never returns (any part of) the secret.
 * @internal
 */
export function holderOf(value: string): string {
  const start = identityStart(value);
  return start < 0 ? '' : value.slice(start);
}

/**
 * The epoch ms stored in a lock value by {@link newLockValue} (a leadership's `since`), or 0 when it
 * has none.
 * @internal
 */
export function sinceOf(value: string): number {
  if (value[SECRET_LENGTH] !== SINCE) return 0;
  const match = /^\d+/.exec(value.slice(SECRET_LENGTH + 1));
  return match ? Number(match[0]) : 0;
}
