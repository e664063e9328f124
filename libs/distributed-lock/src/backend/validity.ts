import { Messages } from '../distributed-lock.messages';
import { LockLostError } from '../errors/lock-lost.error';
import { LockUnavailableError } from '../errors/lock-unavailable.error';
import { monotonicNow } from '../utils/clock';
import type { BackendLock } from './lock-backend.interface';

/**
 * The lock arithmetic every backend shares (Redlock's, docs/SAFETY.md): how much of a TTL a lock may
 * count on once the operation that took or renewed it returned. A backend times the operation with
 * the monotonic clock from before it was sent, so `deadline = start + ttl - drift`, and hands the lock
 * out only while at least {@link minValidity} is left.
 * @internal
 */

/** Redlock's clock-drift factor where a store has no setting of its own (1%). */
export const DEFAULT_DRIFT_FACTOR = 0.01;

/** The shortest validity an acquisition or extension may return: 5% of the TTL (at least 1 ms). */
export function minValidity(ttl: number): number {
  return Math.max(1, ttl * 0.05);
}

/** Milliseconds of validity lost to clock drift for a lock of `ttl` (Redlock: factor·ttl + 2 ms). */
export function driftFor(ttl: number, driftFactor: number = DEFAULT_DRIFT_FACTOR): number {
  return Math.round(driftFactor * ttl) + 2;
}

/**
 * The smallest TTL that can yield a valid lock at all with `driftFactor`: drift and the minimum
 * validity leave at least 1 ms for the round trip (4 ms at the default 1%). A shorter TTL fails
 * every time whatever the store does, so it is bad input, not an outage.
 */
export function smallestTtl(driftFactor: number = DEFAULT_DRIFT_FACTOR): number {
  let ttl = 1;
  while (ttl - driftFor(ttl, driftFactor) - minValidity(ttl) < 1) ttl += 1;
  return ttl;
}

/**
 * The monotonic deadline an operation on `ttl` sent at `start` lasts until on our clock (the
 * `deadline` of {@link leaseOf}, without reading the clock).
 */
export function deadlineOf(
  start: number,
  ttl: number,
  driftFactor: number = DEFAULT_DRIFT_FACTOR,
): number {
  return start + ttl - driftFor(ttl, driftFactor);
}

/**
 * The lease an operation on `ttl` gives when it was sent at `start` (monotonic): the deadline it
 * lasts until on our clock, and the validity left now.
 */
export function leaseOf(
  start: number,
  ttl: number,
  driftFactor: number = DEFAULT_DRIFT_FACTOR,
): { deadline: number; validity: number } {
  const deadline = deadlineOf(start, ttl, driftFactor);
  return { deadline, validity: deadline - monotonicNow() };
}

/**
 * The lock with its validity measured now, when at least {@link minValidity} of `ttl` is left;
 * otherwise gives it back (`discard`) and throws `tooLate(validity)`.
 */
function checked<L extends BackendLock>(
  lock: L,
  ttl: number,
  discard: (lock: L) => void,
  tooLate: (validity: number) => Error,
): L {
  const validity = lock.deadline - monotonicNow();
  if (validity < minValidity(ttl)) {
    discard(lock);
    throw tooLate(Math.floor(validity));
  }
  return { ...lock, validity };
}

/**
 * Hands out a lock an acquisition just took only while at least {@link minValidity} of its TTL is
 * left: otherwise the store was too slow to grant it usefully, so the lock is given back
 * (`discard`) and the store reported unable to decide.
 * @throws LockUnavailableError
 */
export function granted<L extends BackendLock>(
  lock: L,
  keys: string[],
  ttl: number,
  discard: (lock: L) => void,
): L {
  return checked(
    lock,
    ttl,
    discard,
    (v) => new LockUnavailableError(keys, Messages.lowValidity(keys, v, ttl)),
  );
}

/**
 * Hands back an extended lock only while at least {@link minValidity} of its new TTL is left:
 * an extension that came back too late counts as lost, and what it renewed is given back.
 * @throws LockLostError
 */
export function extended<L extends BackendLock>(
  lock: L,
  keys: string[],
  ttl: number,
  discard: (lock: L) => void,
): L {
  return checked(
    lock,
    ttl,
    discard,
    (v) => new LockLostError(keys, Messages.lost(keys, Messages.lateExtension(v, ttl))),
  );
}

/** The field a key is reported under in an `InvalidLockArgumentError`: `key`, or `key[i]` of several. */
export function keyField(keys: readonly string[], i: number): string {
  return keys.length > 1 ? `key[${i}]` : 'key';
}
