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
