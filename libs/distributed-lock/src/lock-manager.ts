import {
  Inject,
  Injectable,
  type BeforeApplicationShutdown,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { LockBackend } from './backend/lock-backend.interface';
import { DEFAULT_STORE, DISTRIBUTED_LOCK_OPTIONS } from './distributed-lock.constants';
import { LockEventEmitter } from './events/lock-event-emitter';
import { LockEvents } from './events/lock-events';
import type { AcquireOptions } from './interfaces/acquire-options.interface';
import type { Lock } from './interfaces/lock.interface';
import type { LockEnd, LockHandle, LockHandleOwner } from './lock-handle';
import type { ResolvedLockOptions } from './options/resolved-options';
import type { ResolvedRun } from './options/run-options';
import { argumentError, checkTtl, type ErrorFactory } from './options/validators';
import { Acquirer, type AcquireRequest } from './runtime/acquirer';
import { LockRegistry } from './runtime/lock-registry';
import { StoreRegistry } from './runtime/store-registry';
import { WorkRunner } from './runtime/work-runner';

/**
 * The runtime behind `LockService`, `@Exclusive()` and the other primitives, assembled from its
 * parts (runtime/): the stores by name, the acquirer (waiting, wake-ups), the work runner (context,
 * auto-extension, release), the registry (held, running, pending, shutdown drain) and the event
 * emitter. It owns the module lifecycle. It imports nothing from the primitives built on it
 * (exclusive/, ...): they register their bootstrap steps with {@link beforeConnect}. Not part of
 * the public API.
 * @internal
 */
@Injectable()
export class LockManager
  implements LockHandleOwner, OnModuleInit, BeforeApplicationShutdown, OnApplicationShutdown
{
  /** Every lock event of the runtime, built only when observed. */
  readonly emitter: LockEventEmitter;
  private readonly storeRegistry: StoreRegistry;
  private readonly registry = new LockRegistry();
  private readonly runner: WorkRunner;
  private readonly acquirer: Acquirer;
  private readonly bootstrapSteps: Array<() => void> = [];

  constructor(
    @Inject(DISTRIBUTED_LOCK_OPTIONS) readonly options: ResolvedLockOptions,
    /** The default store's backend. */
    @Inject(LockBackend) readonly backend: LockBackend,
    readonly events: LockEvents,
  ) {
    this.storeRegistry = new StoreRegistry(backend, options.stores);
    this.emitter = new LockEventEmitter(events);
    this.runner = new WorkRunner(this.registry, events);
    this.acquirer = new Acquirer(
      options.retry,
      this.storeRegistry,
      this.registry,
      this.emitter,
      this,
      (handle) => this.runner.releaseQuietly(handle),
    );
  }

  /** Every store by name: the default one (`'default'`) first, then the module's `stores`. */
  get stores(): ReadonlyMap<string, LockBackend> {
    return this.storeRegistry.stores;
  }

  /**
   * The name of the store `store` names (`undefined`: the default one), checked.
   * @throws InvalidLockArgumentError (or what `fail` builds) for a name that is not configured
   */
  storeName(store: unknown, fail: ErrorFactory = argumentError): string {
    return this.storeRegistry.nameOf(store, fail);
  }

  /** The backend of a store named by {@link storeName}. */
  backendOf(store: string): LockBackend {
    return this.storeRegistry.backendOf(store);
  }

  /** Locks tracked here (held, and held with work running): each owns a timer while it lives. */
  get tracked(): number {
    const { held, running } = this.registry.tracked;
    return held + running;
  }

  /** True once application shutdown has begun. */
  get isClosing(): boolean {
    return this.registry.isClosing;
  }

  /** The lock of the `runExclusive` / `@Exclusive()` call this code runs inside. */
  current(): Lock | undefined {
    return this.runner.current();
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
   * A step to run at bootstrap before any store is connected (e.g. resolving every decorated
   * method's options, so bad ones fail `app.init()` with no connection left open). Call it from a
   * provider's constructor.
   */
  beforeConnect(step: () => void): void {
    this.bootstrapSteps.push(step);
  }

  /**
   * Acquires with waiting: retries a busy lock as `options.wait` (or the retry settings) allow;
   * never retries an outage.
   */
  acquire(
    keys: string[],
    ttl: number,
    options: AcquireOptions,
    handler?: string,
    committed = false,
  ): Promise<LockHandle> {
    return this.acquirer.acquire({ keys, ttl, options, handler, committed });
  }

  /** Acquires as {@link acquire}, with every field of the request (e.g. `stamp` for a leadership). */
  acquireWith(request: AcquireRequest): Promise<LockHandle> {
    return this.acquirer.acquire(request);
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
    return this.runner.run(lock, work, run, committed);
  }

  /**
   * Registers a long-lived holder's step-down: called once when shutdown begins, before the wait
   * for running work (see `LockRegistry.onShutdown`). Returns the unregister function.
   */
  onShutdown(stepDown: () => void): () => void {
    return this.registry.onShutdown(stepDown);
  }

  /**
   * Marks every lock held here on `key` lost (`'expired'`): its signal aborts and it stops extending.
   * For the testing kit's `LockTestingController.expire(key)`, after the store has dropped the key.
   */
  expireHeld(key: string, store: string = DEFAULT_STORE): void {
    for (const handle of this.registry.heldOn(key, store)) handle.lose('expired');
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
    this.registry.enter();
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.registry.leave();
    };
  }

  /** @see LockHandleOwner */
  ended(handle: LockHandle, end: LockEnd): void {
    this.registry.forget(handle);
    this.emitter.ended(handle, end);
  }

  /** @see LockHandleOwner */
  extended(handle: LockHandle, durationMs: number): void {
    this.emitter.extended(handle, durationMs);
  }

  /** Runs the bootstrap steps (bad decorator options fail here), then connects every store. */
  async onModuleInit(): Promise<void> {
    for (const step of this.bootstrapSteps) step();
    const context = { identity: this.options.identity };
    await Promise.all([...this.stores.values()].map((backend) => backend.connect(context)));
  }

  /**
   * Stops new exclusive work, asks long-lived holders to step down, waits for acquisitions in
   * flight, lets running work finish for up to `shutdownTimeout` ms (then abandons its lock: signal
   * aborted, left to expire), and releases every other lock still held.
   */
  beforeApplicationShutdown(): Promise<void> {
    return this.registry.drain(this.options.shutdownTimeout, (lock) =>
      this.runner.releaseQuietly(lock),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([...this.stores.values()].map((backend) => backend.close()));
  }
}
