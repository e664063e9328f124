import type { RetryOptions } from './retry-options.interface';

/** Options of `LockService.acquire` / `tryAcquire`. */
export interface AcquireOptions {
  /**
   * Lock time-to-live in ms (a positive integer). Defaults to the module `ttl`.
   */
  ttl?: number;
  /**
   * How long to keep retrying a busy lock, in ms. `0` = one attempt. When omitted, `acquire` retries
   * as the `retry` options allow. Ignored by `tryAcquire`, which always makes one attempt.
   */
  wait?: number;
  /** Backoff between attempts; merged over the module `retry`. */
  retry?: RetryOptions;
  /**
   * Up to `limit` holders of the key at once, across all replicas (a counting semaphore): busy means
   * every permit is taken. An integer from 1 to 100, for one key. Callers of one key should agree on
   * it: with different limits at most the largest one hold it at once (permit 0 is shared with
   * `limit: 1`). `Lock.permit` says which permit was granted.
   * @default 1 (a mutex)
   * @example `locks.runExclusive('report-export', work, { limit: 3 })`
   */
  limit?: number;
  /**
   * The store to lock in: a name from the module's `stores`. An unknown name throws
   * `InvalidLockArgumentError` (`field: 'store'`).
   * @default 'default' (the store of `connections` / `clients` / `backend`)
   */
  store?: string;
}

/** Options of `LockService.isLocked`. */
export interface IsLockedOptions {
  /** The store to ask: a name from the module's `stores`. @default 'default' */
  store?: string;
}

/** Options of `LockService.runExclusive`. */
export interface RunOptions extends AcquireOptions {
  /**
   * Keep extending the lock while the work runs.
   * @default true
   */
  autoExtend?: boolean;
  /**
   * Keep the lock at least this long after the work started, in ms: when the work ends sooner, the
   * lock is left to expire at `start + lockAtLeastFor` instead of being deleted. Absorbs clock skew
   * between replicas so a short scheduled job cannot run twice for one tick.
   * @default 0
   */
  lockAtLeastFor?: number;
  /**
   * Stop extending this long after the work started, in ms; the lock then expires and
   * `lock.signal` aborts. Bounds how long a hung job can hold the lock.
   */
  lockAtMostFor?: number;
}
