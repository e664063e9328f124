import type { LockHandle } from '../lock-handle';

/**
 * What this replica holds and runs: the locks held, the work running under them, the acquisitions
 * and committed runs still on their way, and the shutdown that drains them all. One per module.
 * @internal
 */
export class LockRegistry {
  private readonly held = new Set<LockHandle>();
  private readonly running = new Map<LockHandle, Promise<unknown>>();
  private readonly stepDowns = new Set<() => void>();
  private closing = false;
  /**
   * Acquisitions waiting for the backend and committed runs not yet running (`enter`); shutdown
   * waits for them so none is granted and forgotten.
   */
  private pending = 0;
  private drained: (() => void) | undefined;

  /** True once application shutdown has begun. */
  get isClosing(): boolean {
    return this.closing;
  }

  /** How many locks are tracked and how many have work running under them (for bench/memory.ts). */
  get tracked(): { held: number; running: number } {
    return { held: this.held.size, running: this.running.size };
  }

  /** Tracks a granted lock until it ends ({@link forget}). */
  track(handle: LockHandle): void {
    this.held.add(handle);
  }

  /** Stops tracking a lock that ended. */
  forget(handle: LockHandle): void {
    this.held.delete(handle);
  }

  /** Every lock held here on `key` in `store`. */
  heldOn(key: string, store: string): LockHandle[] {
    return [...this.held].filter((h) => h.store === store && h.keys.includes(key));
  }

  /** Counts `result` as work running under `handle` until it settles: shutdown waits for it. */
  run<T>(handle: LockHandle, result: Promise<T>): Promise<T> {
    const forget = () => this.running.delete(handle);
    this.running.set(handle, result);
    result.then(forget, forget);
    return result;
  }

  /**
   * A long-lived holder (a leadership, a worker that holds a lock until shutdown): `stepDown` is
   * called once when shutdown begins, before the wait for running work, so the holder can abort its
   * signal (reason `'shutdown'`) and return within `shutdownTimeout`. Returns the unregister
   * function (call it when the holder ends on its own).
   */
  onShutdown(stepDown: () => void): () => void {
    this.stepDowns.add(stepDown);
    return () => this.stepDowns.delete(stepDown);
  }

  /** Counts one acquisition or committed run in flight; pair with {@link leave}. */
  enter(): void {
    this.pending += 1;
  }

  /** Ends one {@link enter}. */
  leave(): void {
    this.pending -= 1;
    if (this.pending === 0) this.drained?.();
  }

  /**
   * Shutdown: refuses new work from now on, asks long-lived holders to step down, waits for
   * acquisitions in flight, lets running work finish for up to `timeoutMs` (then abandons its lock:
   * signal aborted, left to expire), and releases every other lock still held with `release`.
   */
  async drain(timeoutMs: number, release: (handle: LockHandle) => Promise<void>): Promise<void> {
    this.closing = true;
    for (const stepDown of [...this.stepDowns]) stepDown();
    this.stepDowns.clear();
    // A lock granted from now on is released at once by the acquirer; wait for those.
    if (this.pending > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    if (this.running.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      });
      await Promise.race([Promise.allSettled(this.running.values()), timeout]);
      clearTimeout(timer);
      // Work still running past the deadline: abort its signal and stop extending, but never delete
      // its lock while it may still be inside; the lock expires by its TTL (others wait at most that).
      for (const lock of this.running.keys()) lock.abandon();
    }
    await Promise.all([...this.held].map(release));
  }
}
