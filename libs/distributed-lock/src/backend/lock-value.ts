import { randomFillSync } from 'node:crypto';

const BYTES = 16;
/** Length of the secret part of a lock value: 128 bits, hex. */
const SECRET_LENGTH = BYTES * 2;
/** Between the secret and the holder's identity in a stored value. */
const SEPARATOR = '/';
/** Secrets drawn per refill. */
const BATCH = 256;
const pool = Buffer.allocUnsafe(BYTES * BATCH);
/** `pool` as hex, converted once per refill: one conversion per value cost more than the draw. */
let hex = '';
let offset = BATCH;

/**
 * A new lock value: 128 bits from the CSPRNG, hex, then (when `identity` is given) `'/'` and the
 * holder's identity, so a store keeps who holds a key in the same write that takes it (no extra
 * round trip). Only the whole value proves ownership; {@link holderOf} reads the identity back and
 * never returns the secret part. Drawn from a pool refilled 256 values at a time, because one
 * `randomBytes` call per lock cost about a tenth of a lock's CPU time.
 * @internal
 */
export function newLockValue(identity?: string): string {
  if (offset === BATCH) {
    randomFillSync(pool);
    hex = pool.toString('hex');
    offset = 0;
  }
  const secret = hex.slice(offset * SECRET_LENGTH, (offset + 1) * SECRET_LENGTH);
  offset += 1;
  return identity ? secret + SEPARATOR + identity : secret;
}

/**
 * The holder identity stored in a lock value by {@link newLockValue}, or `''` when it has none.
 * Never returns (any part of) the secret.
 * @internal
 */
export function holderOf(value: string): string {
  return value.length > SECRET_LENGTH + 1 && value[SECRET_LENGTH] === SEPARATOR
    ? value.slice(SECRET_LENGTH + 1)
    : '';
}
