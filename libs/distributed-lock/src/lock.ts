import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Messages } from './distributed-lock.messages';
import { InvalidLockArgumentError } from './errors/invalid-lock-argument.error';
import { LockLostError } from './errors/lock-lost.error';
import type { Lock } from './interfaces/lock.interface';
import { checkInteger } from './options/validators';
import type { EngineLock, RedlockEngine } from './redlock/redlock.engine';

/** What a handle tells its owner (the LockService) about its life. @internal */
export interface LockHandleOwner {
  readonly engine: RedlockEngine;
  /** Called once, when the handle stops holding the lock (released, shortened, lost). */
  forget(handle: LockHandle): void;
}

const argumentError = (field: string, message: string) =>
  new InvalidLockArgumentError(field, message);

/**
 * The {@link Lock} implementation. Keeps a monotonic deadline and a timer that aborts `signal` when
 * it passes, so a process that was frozen past its TTL sees the loss as soon as it runs again.
 * @internal
 */
export class LockHandle implements Lock {
  readonly keys: string[];
  private readonly controller = new AbortController();
  private expiry: NodeJS.Timeout | undefined;
  private released: Promise<void> | undefined;
  private _expiresAt = 0;

  constructor(
    private readonly owner: LockHandleOwner,
    keys: string[],
    private engineLock: EngineLock,
    /** TTL the lock was acquired with; the default for `extend()`. */
    readonly ttl: number,
  ) {
    this.keys = keys;
    this.arm(engineLock);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get expiresAt(): number {
    return this._expiresAt;
  }

  /** Validity left now, in ms (negative once expired). */
  remaining(): number {
    return this.engineLock.deadline - performance.now();
  }

  /** A short, non-reversible id of the lock value, safe to log. */
  fingerprint(): string {
    return createHash('sha256').update(this.engineLock.inner.value).digest('hex').slice(0, 8);
  }

  async extend(ttl: number = this.ttl): Promise<void> {
    checkInteger('ttl', ttl, 1, undefined, argumentError);
    if (this.released || this.signal.aborted) {
      throw this.lostError('already released or lost');
    }
    try {
      this.arm(await this.owner.engine.extend(this.engineLock, this.keys, ttl));
    } catch (error) {
      if (error instanceof LockLostError) this.lose(error);
      throw error;
    }
  }

  release(): Promise<void> {
    this.released ??= this.doRelease();
    return this.released;
  }

  /**
   * Lets the lock expire `ms` from now instead of deleting it (`lockAtLeastFor`), and stops holding it.
   * Falls back to a release when `ms` is not positive.
   */
  expireIn(ms: number): Promise<void> {
    this.released ??= ms < 1 ? this.doRelease() : this.doShorten(Math.ceil(ms));
    return this.released;
  }

  /** Marks the lock lost: aborts `signal` with `reason` and stops tracking it. Idempotent. */
  lose(reason: LockLostError): void {
    this.disarm();
    if (!this.controller.signal.aborted) this.controller.abort(reason);
    this.owner.forget(this);
  }

  private async doRelease(): Promise<void> {
    // The owner-checked script is safe even if the lock expired meanwhile: it reports the loss.
    this.lose(this.lostError('released'));
    await this.owner.engine.release(this.engineLock, this.keys);
  }

  private async doShorten(ms: number): Promise<void> {
    try {
      this.engineLock = await this.owner.engine.extend(this.engineLock, this.keys, ms);
    } finally {
      this.lose(this.lostError('released (left to expire)'));
    }
  }

  private lostError(why: string): LockLostError {
    return new LockLostError(this.keys, Messages.lost(this.keys, why));
  }

  private arm(lock: EngineLock): void {
    this.engineLock = lock;
    this._expiresAt = Math.floor(Date.now() + lock.validity);
    if (this.expiry) clearTimeout(this.expiry);
    this.expiry = setTimeout(
      () => this.lose(this.lostError('expired')),
      Math.max(0, lock.validity),
    );
    this.expiry.unref();
  }

  private disarm(): void {
    if (this.expiry) clearTimeout(this.expiry);
    this.expiry = undefined;
  }
}
