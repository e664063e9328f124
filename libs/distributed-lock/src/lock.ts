import { performance } from 'node:perf_hooks';
import { Messages } from './distributed-lock.messages';
import { LockLostError } from './errors/lock-lost.error';
import type { Lock } from './interfaces/lock.interface';
import { argumentError, checkInteger } from './options/validators';
import type { EngineLock, RedlockEngine } from './redlock/redlock.engine';

/** What a handle tells its owner (the LockService) about its life. @internal */
export interface LockHandleOwner {
  readonly engine: RedlockEngine;
  /** Called once, when the handle stops holding the lock (released, shortened, lost). */
  forget(handle: LockHandle): void;
}

/**
 * The {@link Lock} implementation. Keeps a monotonic deadline; once `signal` is observed, a timer
 * aborts it when the deadline passes, so a process frozen past its TTL sees the loss as soon as it
 * runs again. The signal, its timer and the loss error are created lazily: a plain acquire/release
 * that never looks at `signal` pays for none of them (they cost as much as the Redis round trip).
 * @internal
 */
export class LockHandle implements Lock {
  private controller: AbortController | undefined;
  private expiry: NodeJS.Timeout | undefined;
  private released: Promise<void> | undefined;
  private lostWhy: string | undefined;
  private _expiresAt = 0;

  constructor(
    private readonly owner: LockHandleOwner,
    readonly keys: string[],
    private engineLock: EngineLock,
    /** TTL the lock was acquired with; the default for `extend()`. */
    readonly ttl: number,
  ) {
    this.arm(engineLock);
  }

  get signal(): AbortSignal {
    // A process resumed after a freeze runs its own earliest timers before our expiry timer: check the
    // monotonic deadline on every read, so `lock.signal.aborted` is right the moment work looks at it.
    if (this.controller && this.lostWhy === undefined && this.remaining() <= 0)
      this.lose('expired');
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.lostWhy !== undefined) this.controller.abort(this.lostError(this.lostWhy));
      else if (this.remaining() <= 0) this.lose('expired');
      else this.armTimer();
    }
    return this.controller.signal;
  }

  get fencingToken(): number {
    return this.engineLock.fencingToken;
  }

  get expiresAt(): number {
    return this._expiresAt;
  }

  /** True once the lock was released, shortened or lost (or its local deadline passed). */
  get isLost(): boolean {
    return this.lostWhy !== undefined || this.remaining() <= 0;
  }

  /** Validity left now, in ms (negative once expired). */
  remaining(): number {
    return this.engineLock.deadline - performance.now();
  }

  async extend(ttl: number = this.ttl): Promise<void> {
    checkInteger('ttl', ttl, 1, undefined, argumentError);
    if (this.lostWhy !== undefined) throw this.lostError(`already ${this.lostWhy}`);
    try {
      this.arm(await this.owner.engine.extend(this.engineLock, this.keys, ttl));
    } catch (error) {
      if (error instanceof LockLostError) this.lose('no longer held by this owner');
      throw error;
    }
  }

  release(): Promise<void> {
    this.released ??= this.doRelease();
    return this.released;
  }

  /**
   * Lets the lock expire `ms` from now instead of deleting it (`lockAtLeastFor`), and stops holding it.
   * Falls back to a release when `ms` is below 1.
   */
  expireIn(ms: number): Promise<void> {
    this.released ??= ms < 1 ? this.doRelease() : this.doShorten(Math.ceil(ms));
    return this.released;
  }

  /** Marks the lock lost: aborts `signal` (if anyone looked at it) and stops tracking it. Idempotent. */
  lose(why: string): void {
    if (this.lostWhy !== undefined) return;
    this.lostWhy = why;
    if (this.expiry) clearTimeout(this.expiry);
    this.expiry = undefined;
    this.controller?.abort(this.lostError(why));
    this.owner.forget(this);
  }

  private async doRelease(): Promise<void> {
    this.lose('released');
    // The owner-checked script is safe even if the lock expired meanwhile: it reports the loss.
    await this.owner.engine.release(this.engineLock, this.keys);
  }

  private async doShorten(ms: number): Promise<void> {
    try {
      this.engineLock = await this.owner.engine.extend(this.engineLock, this.keys, ms);
    } finally {
      this.lose('released (left to expire)');
    }
  }

  private lostError(why: string): LockLostError {
    return new LockLostError(this.keys, Messages.lost(this.keys, why));
  }

  private arm(lock: EngineLock): void {
    this.engineLock = lock;
    this._expiresAt = Math.floor(Date.now() + lock.validity);
    if (this.controller) this.armTimer();
  }

  private armTimer(): void {
    if (this.expiry) clearTimeout(this.expiry);
    this.expiry = setTimeout(() => this.lose('expired'), Math.max(0, this.remaining()));
    this.expiry.unref();
  }
}
