import {
  Inject,
  Injectable,
  type BeforeApplicationShutdown,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';
import { AutoExtender } from './auto-extender';
import { DISTRIBUTED_LOCK_OPTIONS } from './distributed-lock.constants';
import { Messages } from './distributed-lock.messages';
import { LockBusyError } from './errors/lock-busy.error';
import { LockUnavailableError } from './errors/lock-unavailable.error';
import type { AcquireOptions, RunOptions } from './interfaces/acquire-options.interface';
import type { Lock } from './interfaces/lock.interface';
import { LockHandle, type LockHandleOwner } from './lock';
import type { ResolvedLockOptions } from './options/resolved-options';
import { checkExtendWindow, extendThresholdFor, resolveRetry } from './options/validate-options';
import { argumentError, checkBoolean, checkInteger } from './options/validators';
import { RedisInstances } from './redis/redis-instances';
import { RedlockEngine } from './redlock/redlock.engine';
import { backoffDelay, sleep } from './utils/backoff';
import { normalizeKeys } from './utils/keys';

/** Run options after validation. @internal */
interface ResolvedRun {
  ttl: number;
  autoExtend: boolean;
  lockAtLeastFor: number;
  lockAtMostFor: number | undefined;
}

/**
 * Distributed locks over the module's Redis instances (Redlock: a majority must agree).
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
export class LockService
  implements LockHandleOwner, OnModuleInit, BeforeApplicationShutdown, OnApplicationShutdown
{
  /** @internal */
  readonly engine: RedlockEngine;
  private readonly redis: RedisInstances;
  private readonly held = new Set<LockHandle>();
  private readonly running = new Map<LockHandle, Promise<unknown>>();
  private readonly context = new AsyncLocalStorage<Lock>();
  private closing = false;

  /** @internal */
  constructor(@Inject(DISTRIBUTED_LOCK_OPTIONS) private readonly options: ResolvedLockOptions) {
    this.redis = new RedisInstances(options, options.logger);
    this.engine = new RedlockEngine(this.redis.clients, options.keyPrefix, options.driftFactor);
  }

  /**
   * Acquires the lock, waiting while it is busy as `options.wait` (or the retry settings) allow.
   * @param key one key, or several to lock together (all or none)
   * @throws LockBusyError when it is still held by another owner after waiting
   * @throws LockUnavailableError when no majority of Redis instances answered (never retried)
   * @throws InvalidLockArgumentError for invalid arguments, before any Redis call
   */
  async acquire(key: string | string[], options: AcquireOptions = {}): Promise<Lock> {
    const keys = normalizeKeys(key);
    return this.acquireHandle(keys, this.ttlOf(options), options);
  }

  /**
   * Makes one attempt. Resolves `null` only when another owner holds the lock.
   * @throws LockUnavailableError when no majority of Redis instances answered (an outage is never "busy")
   */
  async tryAcquire(key: string | string[], options: AcquireOptions = {}): Promise<Lock | null> {
    const keys = normalizeKeys(key);
    try {
      return await this.acquireOnce(keys, this.ttlOf(options));
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
    const run = this.resolveRun(options);
    const lock = await this.acquireHandle(keys, run.ttl, options);
    return this.runHolding(lock, work, run);
  }

  /**
   * True when a majority of Redis instances hold `key`.
   * @throws LockUnavailableError when no majority answered
   */
  async isLocked(key: string): Promise<boolean> {
    const [only] = normalizeKeys(key);
    return this.engine.isLocked(only);
  }

  /** The lock of the `runExclusive` / `@Exclusive()` call this code runs inside, if any. */
  current(): Lock | undefined {
    return this.context.getStore();
  }

  /** @internal */
  async onModuleInit(): Promise<void> {
    await this.redis.connect();
  }

  /**
   * Stops new exclusive work, lets running work finish for up to `shutdownTimeout` ms (then aborts
   * its signal), and releases every lock still held.
   * @internal
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.closing = true;
    const overdue: LockHandle[] = [];
    if (this.running.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.options.shutdownTimeout);
      });
      await Promise.race([Promise.allSettled(this.running.values()), timeout]);
      clearTimeout(timer);
      // Work still running past the deadline: abort its signal (with this reason), then release below.
      for (const lock of this.running.keys()) {
        lock.lose('shutdown timeout');
        overdue.push(lock);
      }
    }
    await Promise.all([...this.held, ...overdue].map((lock) => this.releaseQuietly(lock)));
  }

  /** @internal */
  async onApplicationShutdown(): Promise<void> {
    await this.redis.close();
  }

  /** @internal */
  forget(handle: LockHandle): void {
    this.held.delete(handle);
  }

  /** @internal The module's logger (`null` when silenced). */
  get logger(): ResolvedLockOptions['logger'] {
    return this.options.logger;
  }

  /**
   * @internal Takes `key` for `ttl` ms on a majority and never releases it (a tick claim): true when
   * taken, false when someone else has it.
   * @throws LockUnavailableError without a majority
   */
  claimOnce(key: string, ttl: number): Promise<boolean> {
    return this.engine.claim(key, ttl);
  }

  /** @internal True once application shutdown has begun. */
  get isClosing(): boolean {
    return this.closing;
  }

  /** @internal Validates run options and fills in defaults. */
  resolveRun(options: RunOptions): ResolvedRun {
    const autoExtend =
      options.autoExtend === undefined
        ? true
        : checkBoolean('autoExtend', options.autoExtend, argumentError);
    const lockAtLeastFor =
      options.lockAtLeastFor === undefined
        ? 0
        : checkInteger('lockAtLeastFor', options.lockAtLeastFor, 0, undefined, argumentError);
    const lockAtMostFor =
      options.lockAtMostFor === undefined
        ? undefined
        : checkInteger('lockAtMostFor', options.lockAtMostFor, 1, undefined, argumentError);
    if (lockAtMostFor !== undefined && lockAtLeastFor > lockAtMostFor) {
      throw argumentError(
        'lockAtLeastFor',
        `must not exceed lockAtMostFor (${lockAtMostFor}), got ${lockAtLeastFor}`,
      );
    }
    let ttl = this.ttlOf(options);
    if (lockAtMostFor !== undefined) ttl = Math.min(ttl, lockAtMostFor);
    if (autoExtend && (lockAtMostFor === undefined || lockAtMostFor > ttl)) {
      checkExtendWindow(ttl, this.options.extendThreshold, 'ttl', argumentError);
    }
    return { ttl, autoExtend, lockAtLeastFor, lockAtMostFor };
  }

  /** @internal Runs `work` holding `lock`; see `runExclusive`. */
  runHolding<T>(
    lock: LockHandle,
    work: (lock: Lock) => Promise<T> | T,
    run: ResolvedRun,
  ): Promise<T> {
    const started = performance.now();
    const extender = run.autoExtend
      ? new AutoExtender(
          lock,
          extendThresholdFor(lock.ttl, this.options.extendThreshold),
          run.lockAtMostFor === undefined ? undefined : started + run.lockAtMostFor,
          this.options.logger,
        )
      : undefined;
    const result = (async () => {
      try {
        return await this.context.run(lock, () => work(lock));
      } finally {
        await extender?.stop();
        const keepFor = run.lockAtLeastFor - (performance.now() - started);
        await this.releaseQuietly(lock, keepFor);
      }
    })();
    const forget = () => this.running.delete(lock);
    this.running.set(lock, result);
    result.then(forget, forget);
    return result;
  }

  /** @internal Acquire with waiting; the shared path of `acquire`, `runExclusive` and `@Exclusive`. */
  async acquireHandle(keys: string[], ttl: number, options: AcquireOptions): Promise<LockHandle> {
    const wait =
      options.wait === undefined
        ? undefined
        : checkInteger('wait', options.wait, 0, undefined, argumentError);
    const retry =
      options.retry === undefined
        ? this.options.retry
        : resolveRetry('retry', options.retry, this.options.retry, argumentError);
    const start = performance.now();
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await this.acquireOnce(keys, ttl);
      } catch (error) {
        if (!(error instanceof LockBusyError)) throw error;
        let delay = backoffDelay(attempt, retry);
        if (wait === undefined) {
          if (attempt >= retry.count) throw error;
        } else {
          const left = wait - (performance.now() - start);
          if (left <= 0) throw error;
          delay = Math.min(delay, left);
        }
        await sleep(delay);
      }
    }
  }

  private async acquireOnce(keys: string[], ttl: number): Promise<LockHandle> {
    if (this.closing) throw new LockUnavailableError(keys, Messages.shuttingDown);
    const handle = new LockHandle(this, keys, await this.engine.acquire(keys, ttl), ttl);
    this.held.add(handle);
    return handle;
  }

  private ttlOf(options: AcquireOptions): number {
    return options.ttl === undefined
      ? this.options.ttl
      : checkInteger('ttl', options.ttl, 1, undefined, argumentError);
  }

  private async releaseQuietly(lock: LockHandle, keepFor = 0): Promise<void> {
    try {
      await (keepFor >= 1 ? lock.expireIn(keepFor) : lock.release());
    } catch (error) {
      this.options.logger?.warn(Messages.releaseFailed(lock.keys, (error as Error).message));
    }
  }
}
