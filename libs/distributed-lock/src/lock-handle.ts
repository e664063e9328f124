import type { BackendLock, LockBackend } from './backend/lock-backend.interface';
import { Messages } from './distributed-lock.messages';
import { LockLostError } from './errors/lock-lost.error';
import type { LockLostReason } from './events/lock-event.interface';
import type { Lock } from './interfaces/lock.interface';
import { argumentError, checkTtl } from './options/validators';
import { monotonicNow } from './utils/clock';

/** How a handle stopped holding its lock: lost, or let go by its holder. @internal */
export type LockEnd = LockLostReason | 'released' | 'left-to-expire';

const WHY: Record<LockEnd, string> = {
  expired: 'expired',
  'extend-failed': 'no longer held by this owner',
  shutdown: 'shutdown timeout',
  released: 'released',
  'left-to-expire': 'released (left to expire)',
};

/** What a handle tells its owner (the `LockManager`) about its life. @internal */
export interface LockHandleOwner {
  /** The smallest TTL that can be granted (module option checks). */
  readonly minTtl: number;
  /** Called once, when the handle stops holding the lock. */
  ended(handle: LockHandle, end: LockEnd): void;
  /** Called after each successful extension, with how long it took. */
  extended(handle: LockHandle, durationMs: number): void;
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
  private end: LockEnd | undefined;
  private _expiresAt = 0;
  /** Monotonic time of the grant, for how long it was held. */
  readonly grantedAt = monotonicNow();

  constructor(
    private readonly owner: LockHandleOwner,
    /** The backend of the store it was taken in. */
    private readonly backend: LockBackend,
    /** The name of that store (`'default'` or one of the module's `stores`). */
    readonly store: string,
    readonly keys: string[],
    private backendLock: BackendLock,
    /** TTL the lock was acquired with; the default for `extend()`. */
    readonly ttl: number,
    /** `'Class.method'` of the `@Exclusive()` method holding it, if any. */
    readonly handler?: string,
    /** The `limit` it was acquired with (1: a mutex). */
    readonly limit: number = 1,
    /** The epoch ms stored beside the lock when it was taken (a leadership's `since`), if any. */
    readonly since?: number,
  ) {
    this.arm(backendLock);
  }

  get signal(): AbortSignal {
    // A process resumed after a freeze runs its own earliest timers before our expiry timer: check the
    // monotonic deadline on every read, so `lock.signal.aborted` is right the moment work looks at it.
    if (this.controller && this.end === undefined && this.remaining() <= 0) this.lose('expired');
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.end !== undefined) this.controller.abort(this.lostError(WHY[this.end]));
      else if (this.remaining() <= 0) this.lose('expired');
      else this.armTimer();
    }
    return this.controller.signal;
  }

  get fencingToken(): number {
    return this.backendLock.fencingToken;
  }

  get permit(): number {
    return this.backendLock.permit ?? 0;
  }

  get expiresAt(): number {
    return this._expiresAt;
  }

  /** True once the lock was released, shortened or lost (or its local deadline passed). */
  get isLost(): boolean {
    return this.end !== undefined || this.remaining() <= 0;
  }

  /** Validity left now, in ms (negative once expired). */
  remaining(): number {
    return this.backendLock.deadline - monotonicNow();
  }

  async extend(ttl: number = this.ttl): Promise<void> {
    checkTtl('ttl', ttl, this.owner.minTtl, argumentError);
    if (this.end !== undefined) throw this.lostError(`already ${WHY[this.end]}`);
    const start = monotonicNow();
    let extended: BackendLock;
    try {
      extended = await this.backend.extend(this.backendLock, this.keys, ttl);
    } catch (error) {
      if (error instanceof LockLostError) this.lose('extend-failed');
      throw error;
    }
    if (this.end === 'expired') {
      // The deadline passed while the extension was in flight: the signal already told the work the
      // lock is gone. Delete what the late extension renewed instead of leaving it held, untracked.
      this.backend.discard(extended, this.keys);
      throw this.lostError('expired while the extension was in flight');
    }
    if (this.end !== undefined) throw this.lostError(WHY[this.end]);
    this.arm(extended);
    this.owner.extended(this, monotonicNow() - start);
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

  /**
   * Gives the lock up without deleting it (shutdown past its deadline while work still runs): the
   * signal aborts, nothing extends it any more, `release()` becomes a no-op, and it expires by its TTL.
   */
  abandon(): void {
    this.stop('shutdown');
    this.released ??= Promise.resolve();
  }

  /** Marks the lock lost: aborts `signal` (if anyone looked at it) and stops tracking it. Idempotent. */
  lose(reason: LockLostReason): void {
    this.stop(reason);
  }

  private stop(end: LockEnd): void {
    if (this.end !== undefined) return;
    this.end = end;
    if (this.expiry) clearTimeout(this.expiry);
    this.expiry = undefined;
    this.controller?.abort(this.lostError(WHY[end]));
    this.owner.ended(this, end);
  }

  private async doRelease(): Promise<void> {
    this.stop('released');
    // The owner-checked script is safe even if the lock expired meanwhile: it reports the loss.
    await this.backend.release(this.backendLock, this.keys);
  }

  private async doShorten(ms: number): Promise<void> {
    try {
      this.backendLock = await this.backend.extend(this.backendLock, this.keys, ms);
    } finally {
      this.stop('left-to-expire');
    }
  }

  private lostError(why: string): LockLostError {
    return new LockLostError(this.keys, Messages.lost(this.keys, why));
  }

  private arm(lock: BackendLock): void {
    this.backendLock = lock;
    this._expiresAt = Math.floor(Date.now() + lock.validity);
    if (this.controller) this.armTimer();
  }

  private armTimer(): void {
    if (this.expiry) clearTimeout(this.expiry);
    this.expiry = setTimeout(() => this.lose('expired'), Math.max(0, this.remaining()));
    this.expiry.unref();
  }
}
