import {
  Inject,
  Injectable,
  type BeforeApplicationShutdown,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { AsyncLocalStorage } from 'node:async_hooks';
import { AutoExtender } from './auto-extender';
import { LockBackend } from './backend/lock-backend.interface';
import { checkLimit, permitKeys } from './backend/permits';
import { DEFAULT_STORE, DISTRIBUTED_LOCK_OPTIONS } from './distributed-lock.constants';
import { Messages } from './distributed-lock.messages';
import { LockBusyError } from './errors/lock-busy.error';
import { LockUnavailableError } from './errors/lock-unavailable.error';
import type { LockSkipReason } from './events/lock-event.interface';
import { LockEvents } from './events/lock-events';
import { exclusiveError, planExclusive, type ExclusivePlan } from './exclusive/exclusive-plan';
import type { ExclusiveMetadata } from './exclusive/exclusive-options.interface';
import { ExclusiveExplorer } from './exclusive/exclusive.explorer';
import type { AcquireOptions } from './interfaces/acquire-options.interface';
import type { Lock } from './interfaces/lock.interface';
import { LockHandle, type LockEnd, type LockHandleOwner } from './lock';
import type { ResolvedLockOptions, ResolvedRetry } from './options/resolved-options';
import type { ResolvedRun } from './options/run-options';
import { resolveRetry } from './options/validate-options';
import { argumentError, checkInteger, checkTtl, type ErrorFactory } from './options/validators';
import { backoffDelay, sleep } from './utils/backoff';
import { monotonicNow } from './utils/clock';

/**
 * The machinery behind `LockService` and `@Exclusive()`: acquisition with waiting, the locks held
 * and the work running (for `current()` and for shutdown), per-method `@Exclusive()` plans, the
 * module lifecycle, and every lock event. Not part of the public API.
 * @internal
 */
@Injectable()
export class LockManager
  implements LockHandleOwner, OnModuleInit, BeforeApplicationShutdown, OnApplicationShutdown
{
  private readonly held = new Set<LockHandle>();
  private readonly running = new Map<LockHandle, Promise<unknown>>();
  private readonly context = new AsyncLocalStorage<Lock>();
  private readonly plans = new Map<object, ExclusivePlan>();
  private closing = false;
  /**
   * Acquisitions waiting for the backend and committed runs not yet running (`enter`); shutdown
   * waits for them so none is granted and forgotten.
   */
  private pending = 0;
  private drained: (() => void) | undefined;
  /** Every store by name: the default one (`'default'`) first, then the module's `stores`. */
  readonly stores: ReadonlyMap<string, LockBackend>;

  constructor(
    @Inject(DISTRIBUTED_LOCK_OPTIONS) readonly options: ResolvedLockOptions,
    /** The default store's backend. */
    @Inject(LockBackend) readonly backend: LockBackend,
    readonly events: LockEvents,
    private readonly explorer: ExclusiveExplorer,
  ) {
    this.stores = new Map([[DEFAULT_STORE, backend], ...options.stores]);
  }

  /**
   * The name of the store `store` names (`undefined`: the default one), checked.
   * @throws InvalidLockArgumentError (or what `fail` builds) for a name that is not configured
   */
  storeName(store: unknown, fail: ErrorFactory = argumentError): string {
    if (store === undefined) return DEFAULT_STORE;
    if (typeof store !== 'string' || !this.stores.has(store)) {
      throw fail('store', Messages.unknownStore(store, [...this.stores.keys()]));
    }
    return store;
  }

  /** The backend of a store named by {@link storeName}. */
  backendOf(store: string): LockBackend {
    return this.stores.get(store)!;
  }

  /** True once application shutdown has begun. */
  get isClosing(): boolean {
    return this.closing;
  }

  /** The lock of the `runExclusive` / `@Exclusive()` call this code runs inside. */
  current(): Lock | undefined {
    return this.context.getStore();
  }

  /** The module TTL, or `options.ttl` validated. */
  ttlOf(options: AcquireOptions): number {
    return options.ttl === undefined
      ? this.options.ttl
      : checkTtl('ttl', options.ttl, this.options.minTtl, argumentError);
  }

  /** @see LockHandleOwner */
  get minTtl(): number {
    return this.options.minTtl;
  }

  /**
   * Acquires with waiting: retries a busy lock as `options.wait` (or the retry settings) allow;
   * never retries an outage.
   */
  async acquire(
    keys: string[],
    ttl: number,
    options: AcquireOptions,
    handler?: string,
    committed = false,
  ): Promise<LockHandle> {
    const wait =
      options.wait === undefined
        ? undefined
        : checkInteger('wait', options.wait, 0, undefined, argumentError);
    const retry =
      options.retry === undefined
        ? this.options.retry
        : resolveRetry('retry', options.retry, this.options.retry, argumentError);
    // With release announcements every waiter wakes on every release and all but one lose the race:
    // counting those as retries gave up 15-50x sooner than polling. Then the retry settings are a
    // time budget (the sum of their delays) instead of a number of attempts.
    const store = this.storeName(options.store);
    const backend = this.backendOf(store);
    const limit = this.limitOf(keys, options.limit, store, backend);
    /** What a waiter wakes on: the release of any permit of a limited key (computed once waiting). */
    let released: string[] | undefined;
    const budget = wait ?? (backend.waitForRelease === undefined ? undefined : retryBudget(retry));
    const start = monotonicNow();
    for (let attempt = 0; ; attempt += 1) {
      try {
        const lock = await this.acquireOnce(keys, ttl, handler, committed, store, backend, limit);
        if (this.events.observed) {
          this.events.emit({
            type: 'acquired',
            keys,
            at: Date.now(),
            handler,
            store,
            durationMs: monotonicNow() - start,
            fencingToken: lock.fencingToken,
            ...permitOf(lock),
          });
        }
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
          this.failed(error, keys, start, handler, store);
          throw error;
        }
        // Woken by the holder's release announcement when the backend has them; the delay is the
        // fallback (a lost announcement, or a lock that expired instead of being released).
        released ??= limit > 1 ? permitKeys(keys[0], limit) : keys;
        await (backend.waitForRelease ? backend.waitForRelease(released, delay) : sleep(delay));
      }
    }
  }

  /**
   * The `limit` of an acquisition, checked before any store call: an integer from 1 to `MAX_LIMIT`,
   * above 1 only for one key and on a backend that supports limits.
   * @throws InvalidLockArgumentError with field `limit`
   */
  limitOf(keys: string[], value: unknown, store: string, backend: LockBackend): number {
    const limit = checkLimit(value, argumentError);
    if (limit === 1) return 1;
    if (keys.length > 1) throw argumentError('limit', Messages.limitManyKeys(limit));
    if (backend.limits !== true) {
      throw argumentError('limit', Messages.limitUnsupported(store, backend.name));
    }
    return limit;
  }

  /**
   * Runs `work` holding `lock`, keeping it extended; releases (or shortens) it afterwards. The work
   * counts as running (shutdown waits for it) from this call on.
   */
  runHolding<T>(
    lock: LockHandle,
    work: (lock: Lock) => Promise<T> | T,
    run: ResolvedRun,
    committed = false,
  ): Promise<T> {
    if (this.closing && !committed) {
      // Shutdown began between the grant and here: no new work starts.
      return this.releaseQuietly(lock).then(() => {
        throw new LockUnavailableError(lock.keys, Messages.shuttingDown);
      });
    }
    const started = monotonicNow();
    const extender = run.autoExtend
      ? new AutoExtender(
          lock,
          run.extendThreshold,
          run.lockAtMostFor === undefined ? undefined : started + run.lockAtMostFor,
          this.events,
        )
      : undefined;
    const result = (async () => {
      try {
        return await this.context.run(lock, () => work(lock));
      } finally {
        await extender?.stop();
        const keepFor = run.lockAtLeastFor - (monotonicNow() - started);
        await this.releaseQuietly(lock, keepFor);
      }
    })();
    const forget = () => this.running.delete(lock);
    this.running.set(lock, result);
    result.then(forget, forget);
    return result;
  }

  /**
   * Marks every lock held here on `key` lost (`'expired'`): its signal aborts and it stops extending.
   * For the testing kit's `LockTestingController.expire(key)`, after the store has dropped the key.
   */
  expireHeld(key: string, store: string = DEFAULT_STORE): void {
    for (const handle of [...this.held]) {
      if (handle.store === store && handle.keys.includes(key)) handle.lose('expired');
    }
  }

  /** Takes `key` in `store` for `ttl` ms and never releases it (a cron tick claim). */
  claim(key: string, ttl: number, store: string = DEFAULT_STORE): Promise<boolean> {
    return this.backendOf(store).claim(key, ttl);
  }

  /**
   * Marks a run as committed: shutdown, if it begins now, waits until the returned function is
   * called (once the run has been handed to `runHolding`, or has ended) before it looks at the work
   * running. A cron tick claim commits its replica to the tick (every other replica skips it), so
   * the claimed run must go ahead (`committed` acquisition and run) instead of being refused.
   */
  enter(): () => void {
    this.pending += 1;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.leave();
    };
  }

  /** The plan of an `@Exclusive()` method: resolved at bootstrap by the explorer, else now. */
  planFor(fn: object, meta: ExclusiveMetadata): ExclusivePlan {
    return this.plans.get(fn) ?? this.register(fn, meta);
  }

  /** Resolves and remembers the plan of `fn`; throws `DistributedLockConfigError` for bad options. */
  register(fn: object, meta: ExclusiveMetadata): ExclusivePlan {
    const plan = planExclusive(meta, fn, this.options, (store, fail) =>
      this.storeName(store, fail),
    );
    if (plan.limit > 1 && this.backendOf(plan.store).limits !== true) {
      const backend = this.backendOf(plan.store);
      throw exclusiveError(plan.where)(
        'limit',
        Messages.limitUnsupported(plan.store, backend.name),
      );
    }
    this.plans.set(fn, plan);
    return plan;
  }

  /** Records that an `@Exclusive()` invocation did not run. */
  skipped(
    plan: ExclusivePlan,
    keys: string[],
    reason: LockSkipReason,
    detail: { tick?: number; error?: string } = {},
  ): undefined {
    if (this.events.observed) {
      this.events.emit({
        type: 'skipped',
        keys,
        at: Date.now(),
        handler: plan.where,
        store: plan.store,
        reason,
        ...detail,
      });
    }
    return undefined;
  }

  /** @see LockHandleOwner */
  ended(handle: LockHandle, end: LockEnd): void {
    this.held.delete(handle);
    if (!this.events.observed) return;
    const base = {
      keys: handle.keys,
      at: Date.now(),
      handler: handle.handler,
      store: handle.store,
      durationMs: monotonicNow() - handle.grantedAt,
      fencingToken: handle.fencingToken,
      ...permitOf(handle),
    };
    this.events.emit(
      end === 'released' || end === 'left-to-expire'
        ? { type: 'released', ...base }
        : { type: 'lost', reason: end, ...base },
    );
  }

  /** @see LockHandleOwner */
  extended(handle: LockHandle, durationMs: number): void {
    if (!this.events.observed) return;
    this.events.emit({
      type: 'extended',
      keys: handle.keys,
      at: Date.now(),
      handler: handle.handler,
      store: handle.store,
      durationMs,
      fencingToken: handle.fencingToken,
      ...permitOf(handle),
    });
  }

  /** Resolves every `@Exclusive()` method's options first (bad ones fail bootstrap), then connects. */
  async onModuleInit(): Promise<void> {
    this.explorer.explore((fn, meta) => this.register(fn, meta));
    const context = { identity: this.options.identity };
    await Promise.all([...this.stores.values()].map((backend) => backend.connect(context)));
  }

  /**
   * Stops new exclusive work, waits for acquisitions in flight, lets running work finish for up to
   * `shutdownTimeout` ms (then abandons its lock: signal aborted, left to expire), and releases every
   * other lock still held.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.closing = true;
    // A lock granted from now on is released at once by `acquireOnce`; wait for those.
    if (this.pending > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    if (this.running.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.options.shutdownTimeout);
      });
      await Promise.race([Promise.allSettled(this.running.values()), timeout]);
      clearTimeout(timer);
      // Work still running past the deadline: abort its signal and stop extending, but never delete
      // its lock while it may still be inside; the lock expires by its TTL (others wait at most that).
      for (const lock of this.running.keys()) lock.abandon();
    }
    await Promise.all([...this.held].map((lock) => this.releaseQuietly(lock)));
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([...this.stores.values()].map((backend) => backend.close()));
  }

  private async acquireOnce(
    keys: string[],
    ttl: number,
    handler: string | undefined,
    committed: boolean,
    store: string,
    backend: LockBackend,
    limit: number,
  ): Promise<LockHandle> {
    if (this.closing && !committed) throw new LockUnavailableError(keys, Messages.shuttingDown);
    this.pending += 1;
    try {
      const handle = new LockHandle(
        this,
        backend,
        store,
        keys,
        await (limit > 1 ? backend.acquire(keys, ttl, { limit }) : backend.acquire(keys, ttl)),
        ttl,
        handler,
        limit,
      );
      if (this.closing && !committed) {
        // Granted after shutdown began: give it back now, while the connections are still open.
        await this.releaseQuietly(handle);
        throw new LockUnavailableError(keys, Messages.shuttingDown);
      }
      this.held.add(handle);
      return handle;
    } finally {
      this.leave();
    }
  }

  private leave(): void {
    this.pending -= 1;
    if (this.pending === 0) this.drained?.();
  }

  private failed(
    error: unknown,
    keys: string[],
    start: number,
    handler: string | undefined,
    store: string,
  ): void {
    if (!this.events.observed) return;
    const durationMs = monotonicNow() - start;
    const at = Date.now();
    if (error instanceof LockBusyError) {
      this.events.emit({ type: 'busy', keys, at, handler, store, durationMs });
    } else if (error instanceof LockUnavailableError) {
      this.events.emit({
        type: 'unavailable',
        keys,
        at,
        handler,
        store,
        durationMs,
        error: error.message,
      });
    }
  }

  private async releaseQuietly(lock: LockHandle, keepFor = 0): Promise<void> {
    try {
      await (keepFor >= 1 ? lock.expireIn(keepFor) : lock.release());
    } catch (error) {
      this.events.notice('warn', Messages.releaseFailed(lock.keys, (error as Error).message));
    }
  }
}

/** The `permit` field of a limited lock's events (none for a mutex, whose events stay as they were). */
function permitOf(handle: LockHandle): { permit?: number } {
  return handle.limit > 1 ? { permit: handle.permit } : {};
}

/** How long the retry settings would wait in all, without jitter: the time budget of a waiter. */
function retryBudget(retry: ResolvedRetry): number {
  let total = 0;
  for (let i = 0; i < retry.count; i += 1) total += Math.min(retry.delay * 2 ** i, retry.maxDelay);
  return total;
}
