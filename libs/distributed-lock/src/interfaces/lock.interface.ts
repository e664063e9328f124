/**
 * A held distributed lock. Obtain one from `LockService.acquire`, `tryAcquire`, `runExclusive` or,
 * inside an `@Exclusive()` method, `LockService.current()`.
 */
export interface Lock {
  /** The resources held (without the key prefix). */
  readonly keys: string[];
  /**
   * Strictly increasing per key across every holder (on 1, 3 or 5 instances, also with a minority
   * down or restarted empty). Pass it to the resource you protect and have it reject writes whose
   * token is lower than the highest it has seen: that stops a holder that paused past its TTL.
   */
  readonly fencingToken: number;
  /**
   * Which permit is held, 0 … limit − 1, when acquired with `limit` (0 for a mutex). Fencing tokens
   * increase per key and permit, so a resource guarded by a limited key checks them per permit.
   */
  readonly permit: number;
  /**
   * Epoch ms until which the lock is valid: the TTL reduced by the time acquisition (or the last
   * extension) took and by clock drift. Updated by every extension.
   */
  readonly expiresAt: number;
  /**
   * Aborted when the lock is lost: an extension failed, it expired, or it was released. Check it
   * before every side effect that needs exclusivity; `signal.reason` is a `LockLostError`.
   */
  readonly signal: AbortSignal;
  /**
   * Extend the lock to `ttl` ms from now (default: the TTL it was acquired with). Ownership-checked.
   * @throws LockLostError if the lock is no longer ours
   * @throws LockUnavailableError if a majority of Redis instances could not be reached
   */
  extend(ttl?: number): Promise<void>;
  /**
   * Release the lock. Ownership-checked (never deletes another owner's lock) and idempotent: later
   * calls return the first call's promise.
   * @throws LockLostError if the lock had already been lost
   */
  release(): Promise<void>;
}
