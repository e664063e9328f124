import { Injectable } from '@nestjs/common';
import type { Observable } from 'rxjs';
import { LockBusyError } from './errors/lock-busy.error';
import type { LockEvent } from './events/lock-event.interface';
import type {
  AcquireOptions,
  IsLockedOptions,
  RunOptions,
} from './interfaces/acquire-options.interface';
import type { Lock } from './interfaces/lock.interface';
import { lead, leaderOf } from './leader/lead';
import type {
  LeadOptions,
  LeaderInfo,
  LeaderInfoOptions,
  Leadership,
} from './leader/leader.interface';
import { LockManager } from './lock-manager';
import { resolveRun } from './options/run-options';
import { argumentError } from './options/validators';
import { normalizeKeys } from './utils/keys';

/**
 * Distributed locks over the module's backend (by default Redis, Redlock: a majority must agree).
 *
 * @example
 * ```ts
 * constructor(private readonly locks: LockService) {}
 *
 * pay(orderId: string) {
 *   return this.locks.runExclusive(`order:${orderId}`, async (lock) => {
 *     if (lock.signal.aborted) throw lock.signal.reason;
 *     await this.payments.charge(orderId);
 *   });
 * }
 * ```
 */
@Injectable()
export class LockService {
  /** @internal */
  constructor(private readonly manager: LockManager) {}

  /**
   * Every lock outcome of this module: acquired, busy, unavailable, extended, lost, released, and
   * skipped `@Exclusive()` runs (with the reason). Never carries lock values.
   *
   * @example
   * ```ts
   * locks.events.pipe(filter((e) => e.type === 'lost')).subscribe((e) => alert(e.keys, e.reason));
   * ```
   */
  get events(): Observable<LockEvent> {
    return this.manager.events.events;
  }

  /**
   * Acquires the lock, waiting while it is busy as `options.wait` (or the retry settings) allow.
   * @param key one key, or several to lock together (all or none)
   * @throws LockBusyError when it is still held by another owner after waiting
   * @throws LockUnavailableError when no majority of the backend answered (never retried)
   * @throws InvalidLockArgumentError for invalid arguments, before any backend call
   */
  async acquire(key: string | string[], options: AcquireOptions = {}): Promise<Lock> {
    const keys = normalizeKeys(key);
    return await this.manager.acquire(keys, this.manager.ttlOf(options), options);
  }

  /**
   * Makes one attempt. Resolves `null` only when another owner holds the lock.
   * @throws LockUnavailableError when no majority of the backend answered (an outage is never "busy")
   */
  async tryAcquire(key: string | string[], options: AcquireOptions = {}): Promise<Lock | null> {
    const keys = normalizeKeys(key);
    try {
      return await this.manager.acquire(keys, this.manager.ttlOf(options), {
        wait: 0,
        store: options.store,
        limit: options.limit,
      });
    } catch (error) {
      if (error instanceof LockBusyError) return null;
      throw error;
    }
  }

  /**
   * Acquires the lock, runs `work` while keeping the lock extended, then releases it (or, with
   * `lockAtLeastFor`, leaves it to expire). A release failure is logged and never masks `work`'s
   * result or error. If the lock is lost meanwhile, `lock.signal` aborts: check it before side effects.
   * @throws LockBusyError | LockUnavailableError as `acquire`
   */
  async runExclusive<T>(
    key: string | string[],
    work: (lock: Lock) => Promise<T> | T,
    options: RunOptions = {},
  ): Promise<T> {
    const keys = normalizeKeys(key);
    if (typeof work !== 'function') throw argumentError('work', 'must be a function');
    const run = resolveRun(options, this.manager.options, argumentError);
    const lock = await this.manager.acquire(keys, run.ttl, options);
    return this.manager.runHolding(lock, work, run);
  }

  /**
   * True when `key` is held (on Redis: by a majority of instances).
   * @throws LockUnavailableError when no majority answered
   * @throws InvalidLockArgumentError for an invalid key or an unknown `store`
   */
  async isLocked(key: string, options: IsLockedOptions = {}): Promise<boolean> {
    const [only] = normalizeKeys(key);
    return this.manager.backendOf(this.manager.storeName(options.store)).isLocked(only);
  }

  /**
   * Campaigns for the leader election `name` and resolves once this replica leads it (waiting as
   * `options.wait`, else the module's retry settings, allow). The leadership is extended until you
   * call `resign()` or it is lost (`signal` aborts with `'lost'`, before the lease can expire); at
   * shutdown `signal` aborts with `'shutdown'` and you have `shutdownTimeout` to resign.
   *
   * @example
   * ```ts
   * const leadership = await locks.lead('billing-export', { wait: 5_000 });
   * try {
   *   while (!leadership.signal.aborted) await exportBatch(leadership.term);
   * } finally {
   *   await leadership.resign();
   * }
   * ```
   * @throws LockBusyError when another replica still leads after `wait`
   * @throws LockUnavailableError when the store could not decide
   * @throws InvalidLockArgumentError naming the field (`name`, `ttl`, `wait`, `store`), before any store call
   */
  lead(name: string, options: LeadOptions = {}): Promise<Leadership> {
    return lead(this.manager, name, options);
  }

  /**
   * Who leads the election `name` now (`identity`, `term`, `since`), read from the store without
   * campaigning; `null` when nobody does.
   * @throws LockUnavailableError when the store could not answer
   * @throws InvalidLockArgumentError for a bad name or an unknown `store`
   */
  leader(name: string, options: LeaderInfoOptions = {}): Promise<LeaderInfo | null> {
    return leaderOf(this.manager, name, options);
  }

  /** The lock of the `runExclusive` / `@Exclusive()` call this code runs inside, if any. */
  current(): Lock | undefined {
    return this.manager.current();
  }
}
