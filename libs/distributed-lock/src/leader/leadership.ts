import type { LeaderStepDownReason } from '../events/lock-event.interface';
import type { LockHandle } from '../lock-handle';
import type { LockManager } from '../lock-manager';
import { monotonicNow } from '../utils/clock';
import type { Leadership } from './leader.interface';

/**
 * How long before the lease's own deadline a leadership steps down when it could not be extended:
 * a timer fires late under load, and the leader must have stopped before a rival can be elected.
 * A twentieth of the TTL (5 ms to 1 s), and at most half the extension threshold so a healthy
 * leadership is always extended first.
 * @internal
 */
export function stepDownGuard(ttl: number, extendThreshold: number): number {
  return Math.max(
    1,
    Math.min(Math.floor(extendThreshold / 2), Math.max(5, Math.floor(ttl / 20)), 1_000),
  );
}

/**
 * The {@link Leadership} implementation: one term, on one held and auto-extended lock (the runtime's
 * `LockHandle`, run by `LockManager.runHolding`). It ends exactly once, with the first of: the lock
 * lost (its signal), the lease's deadline minus {@link stepDownGuard} reached without an extension
 * (a timer, and a check on every read of `signal`, so a process resumed after a pause sees it before
 * acting), shutdown (`LockManager.onShutdown`), or `resign()`. Ending aborts `signal` with the reason,
 * emits `'stepped-down'` and resolves {@link ended}.
 * @internal
 */
export class LeadershipHandle implements Leadership {
  readonly term: number;
  readonly since: number;
  /** Resolves once the leadership ended (with its reason). */
  readonly ended: Promise<LeaderStepDownReason>;
  /** Resolves once `resign()` was called (what a `lead()` holder's shutdown waits for). */
  readonly resigned: Promise<void>;
  private resignCalled!: () => void;
  private readonly controller = new AbortController();
  private reason: LeaderStepDownReason | undefined;
  private finish!: (reason: LeaderStepDownReason) => void;
  private timer: NodeJS.Timeout | undefined;
  private unregister: (() => void) | undefined;
  private readonly began = monotonicNow();
  private readonly onLost = () => this.stepDown('lost');

  constructor(
    private readonly manager: LockManager,
    private readonly lock: LockHandle,
    readonly name: string,
    private readonly guard: number,
    /** `'Class.method'` of the `@Leader` method, if any. */
    private readonly handler?: string,
  ) {
    this.term = lock.fencingToken;
    this.since = lock.since ?? Date.now();
    this.ended = new Promise((resolve) => (this.finish = resolve));
    this.resigned = new Promise((resolve) => (this.resignCalled = resolve));
  }

  get signal(): AbortSignal {
    if (this.reason === undefined && this.lock.remaining() <= this.guard) this.stepDown('lost');
    return this.controller.signal;
  }

  /** Starts watching the lease and shutdown, and announces the election (`'elected'`). */
  start(): this {
    this.manager.emitter.elected(this.subject(), this.term, this.since);
    if (this.manager.isClosing) {
      this.stepDown('shutdown');
      return this;
    }
    this.unregister = this.manager.onShutdown(() => this.stepDown('shutdown'));
    this.lock.signal.addEventListener('abort', this.onLost, { once: true });
    this.watch();
    return this;
  }

  async resign(): Promise<void> {
    this.stepDown('resigned');
    this.resignCalled();
    // Owner-checked; a failure is logged by the runner when the work ends, never thrown here.
    await this.lock.release().catch(() => undefined);
  }

  /** Ends the leadership (the first call wins): aborts `signal`, emits `'stepped-down'`. */
  stepDown(reason: LeaderStepDownReason): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.unregister?.();
    this.lock.signal.removeEventListener('abort', this.onLost);
    this.controller.abort(reason);
    this.manager.emitter.steppedDown(this.subject(), this.term, reason, this.began);
    this.finish(reason);
  }

  /** Steps down `guard` ms before the deadline unless an extension moved it meanwhile. */
  private watch(): void {
    if (this.reason !== undefined) return;
    const left = this.lock.remaining() - this.guard;
    if (left <= 0 || this.lock.isLost) {
      this.stepDown('lost');
      return;
    }
    this.timer = setTimeout(() => this.watch(), left);
    this.timer.unref();
  }

  private subject(): { keys: string[]; handler?: string; store: string } {
    return { keys: [this.name], handler: this.handler, store: this.lock.store };
  }
}
