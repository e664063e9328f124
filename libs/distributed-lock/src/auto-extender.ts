import { Messages } from './distributed-lock.messages';
import { LockLostError } from './errors/lock-lost.error';
import type { LockEvents } from './events/lock-events';
import type { LockHandle } from './lock-handle';
import { monotonicNow } from './utils/clock';

/**
 * Keeps a lock alive while work runs: extends it when `threshold` ms of validity are left, retries a
 * failed extension with backoff (never in a hot loop) until the lock's own deadline, and stops at
 * `mostUntil` (monotonic) so the lock then expires. A lost lock is reported by the handle's signal.
 * @internal
 */
export class AutoExtender {
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<void> | undefined;
  private stopped = false;
  private failures = 0;

  constructor(
    private readonly lock: LockHandle,
    private readonly threshold: number,
    private readonly mostUntil: number | undefined,
    private readonly events: LockEvents,
  ) {
    this.schedule(this.lock.remaining() - this.threshold);
  }

  /** Stops extending and waits for an extension in flight, so a release never races it. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.inflight;
  }

  private schedule(delay: number): void {
    if (this.stopped || this.lock.isLost) return;
    this.timer = setTimeout(
      () => {
        this.inflight = this.tick();
      },
      Math.max(0, delay),
    );
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    let ttl = this.lock.ttl;
    let last = false;
    if (this.mostUntil !== undefined) {
      const left = Math.floor(this.mostUntil - monotonicNow());
      if (left < 1) return;
      if (left <= ttl) {
        ttl = left;
        last = true;
      }
    }
    try {
      await this.lock.extend(ttl);
      this.failures = 0;
      if (!last) this.schedule(this.lock.remaining() - this.threshold);
    } catch (error) {
      // A lost lock has already aborted its signal; there is nothing left to keep alive.
      if (error instanceof LockLostError || this.stopped) return;
      this.failures += 1;
      this.events.notice('warn', Messages.extendFailed(this.lock.keys, (error as Error).message));
      const remaining = this.lock.remaining();
      // Past the deadline the handle's expiry timer aborts the signal.
      if (remaining > 0) this.schedule(Math.min(50 * 2 ** this.failures, remaining / 2));
    }
  }
}
