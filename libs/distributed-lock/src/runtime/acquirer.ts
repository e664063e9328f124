import type { LockBackend } from '../backend/lock-backend.interface';
import { checkLimit, permitKeys } from '../backend/permits';
import { Messages } from '../distributed-lock.messages';
import { LockBusyError } from '../errors/lock-busy.error';
import { LockUnavailableError } from '../errors/lock-unavailable.error';
import type { LockEventEmitter } from '../events/lock-event-emitter';
import type { AcquireOptions } from '../interfaces/acquire-options.interface';
import { LockHandle, type LockHandleOwner } from '../lock-handle';
import type { ResolvedRetry } from '../options/resolved-options';
import { resolveRetry } from '../options/validate-options';
import { argumentError, checkInteger } from '../options/validators';
import { backoffDelay, sleep } from '../utils/backoff';
import { monotonicNow } from '../utils/clock';
import type { LockRegistry } from './lock-registry';
import type { StoreRegistry } from './store-registry';

/** One acquisition, as the runtime asks for it. */
export interface AcquireRequest {
  readonly keys: string[];
  readonly ttl: number;
  /** `wait`, `retry` and `store` of the call. */
  readonly options: AcquireOptions;
  /** `'Class.method'` of the decorated method acquiring, if any. */
  readonly handler?: string;
  /**
   * A committed run (a claimed cron tick): granted and run even once shutdown has begun, because
   * every other replica skips the tick.
   */
  readonly committed?: boolean;
  /**
   * Store each attempt's epoch ms beside the lock, in the same write (a leadership's `since`, read
   * back by `LockService.leader()`); the granted handle's `since` is that attempt's.
   */
  readonly stamp?: boolean;
}

/**
 * Acquisition with waiting: one backend attempt at a time, retried while busy within the wait
 * budget, woken by release announcements where the store has them; never retries an outage.
 * Refuses (and gives back) locks granted once shutdown has begun, unless the run is committed.
 * @internal
 */
export class Acquirer {
  /** {@link retryBudget} of the module's retry settings, computed once. */
  private readonly defaultBudget: number;

  constructor(
    private readonly retry: ResolvedRetry,
    private readonly stores: StoreRegistry,
    private readonly registry: LockRegistry,
    private readonly emitter: LockEventEmitter,
    private readonly owner: LockHandleOwner,
    private readonly releaseQuietly: (handle: LockHandle) => Promise<void>,
  ) {
    this.defaultBudget = retryBudget(retry);
  }

  /**
   * Acquires with waiting: retries a busy lock as `options.wait` (or the retry settings) allow.
   * @throws InvalidLockArgumentError for a bad `wait`, `retry` or `store`, before any store call
   */
  async acquire(request: AcquireRequest): Promise<LockHandle> {
    const { keys, options, handler } = request;
    const wait =
      options.wait === undefined
        ? undefined
        : checkInteger('wait', options.wait, 0, undefined, argumentError);
    const retry =
      options.retry === undefined
        ? this.retry
        : resolveRetry('retry', options.retry, this.retry, argumentError);
    const store = this.stores.nameOf(options.store);
    const backend = this.stores.backendOf(store);
    // With release announcements every waiter wakes on every release and all but one lose the race:
    // counting those as retries gave up 15-50x sooner than polling. Then the retry settings are a
    // time budget (the sum of their delays) instead of a number of attempts.
    const limit = limitOf(keys, options.limit, store, backend);
    /** What a waiter wakes on: the release of any permit of a limited key (computed once waiting). */
    let released: string[] | undefined;
    const budget =
      wait ??
      (backend.waitForRelease === undefined
        ? undefined
        : retry === this.retry
          ? this.defaultBudget
          : retryBudget(retry));
    const subject = { keys, handler, store };
    const start = monotonicNow();
    for (let attempt = 0; ; attempt += 1) {
      try {
        const lock = await this.once(request, store, limit);
        this.emitter.acquired(subject, start, lock);
        return lock;
      } catch (error) {
        let delay = -1;
        if (error instanceof LockBusyError) {
          delay = backoffDelay(attempt, retry);
          if (budget === undefined) {
            if (attempt >= retry.count) delay = -1;
          } else {
            const left = budget - (monotonicNow() - start);
            delay = left <= 0 ? -1 : Math.min(delay, left);
          }
        }
        if (delay < 0) {
          this.emitter.failed(subject, start, error);
          throw error;
        }
        // Woken by the holder's release announcement when the backend has them; the delay is the
        // fallback (a lost announcement, or a lock that expired instead of being released).
        released ??= limit > 1 ? permitKeys(keys[0], limit) : keys;
        await (backend.waitForRelease ? backend.waitForRelease(released, delay) : sleep(delay));
      }
    }
  }

  /** One backend attempt, counted as pending so shutdown waits for it. */
  private async once(request: AcquireRequest, store: string, limit: number): Promise<LockHandle> {
    const { keys, ttl, handler, committed = false, stamp = false } = request;
    if (this.registry.isClosing && !committed) {
      throw new LockUnavailableError(keys, Messages.shuttingDown);
    }
    const backend = this.stores.backendOf(store);
    this.registry.enter();
    try {
      const since = stamp ? Date.now() : undefined;
      // Plain mutexes keep the call without options (the hot path).
      const extra = limit > 1 || since !== undefined ? { limit, since } : undefined;
      const handle = new LockHandle(
        this.owner,
        backend,
        store,
        keys,
        await (extra ? backend.acquire(keys, ttl, extra) : backend.acquire(keys, ttl)),
        ttl,
        handler,
        limit,
        since,
      );
      if (this.registry.isClosing && !committed) {
        // Granted after shutdown began: give it back now, while the connections are still open.
        await this.releaseQuietly(handle);
        throw new LockUnavailableError(keys, Messages.shuttingDown);
      }
      this.registry.track(handle);
      return handle;
    } finally {
      this.registry.leave();
    }
  }
}

/**
 * The `limit` of an acquisition, checked before any store call: an integer from 1 to `MAX_LIMIT`,
 * above 1 only for one key and on a backend that supports limits.
 * @throws InvalidLockArgumentError with field `limit`
 */
export function limitOf(
  keys: string[],
  value: unknown,
  store: string,
  backend: LockBackend,
): number {
  const limit = checkLimit(value, argumentError);
  if (limit === 1) return 1;
  if (keys.length > 1) throw argumentError('limit', Messages.limitManyKeys(limit));
  if (backend.limits !== true) {
    throw argumentError('limit', Messages.limitUnsupported(store, backend.name));
  }
  return limit;
}

/** How long the retry settings would wait in all, without jitter: the time budget of a waiter. */
export function retryBudget(retry: ResolvedRetry): number {
  let total = 0;
  for (let i = 0; i < retry.count; i += 1) total += Math.min(retry.delay * 2 ** i, retry.maxDelay);
  return total;
}
