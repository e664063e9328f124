import { leaderKey } from '../backend/held-key';
import { Messages } from '../distributed-lock.messages';
import { LockBusyError } from '../errors/lock-busy.error';
import { LockUnavailableError } from '../errors/lock-unavailable.error';
import type { RetryOptions } from '../interfaces/retry-options.interface';
import type { LockManager } from '../lock-manager';
import { monotonicNow } from '../utils/clock';
import type { Leadership } from './leader.interface';
import { runTerm, type TermPlan } from './leader-term';

/** A `@Leader` method resolved at bootstrap. @internal */
export interface LeaderPlan extends TermPlan {
  /** `'Class.method'`. */
  readonly handler: string;
}

/** The first pause after a term that ended by itself (returned or threw), doubled per such term. */
export const REST_MS = 100;

/** The first pause after the store could not decide, doubled per failure in a row. */
export const OUTAGE_MS = 100;

/**
 * The pause before campaigning again: `base · 2^(streak − 1)` with ±25% jitter, capped by `cap`.
 * @internal
 */
export function campaignPause(base: number, streak: number, cap: number): number {
  const raw = Math.min(cap, base * 2 ** Math.max(0, Math.min(streak - 1, 20)));
  return Math.max(1, Math.round(raw * (0.75 + Math.random() * 0.5)));
}

/**
 * One replica's campaign for one `@Leader` method, from application bootstrap to shutdown: waits
 * for the leadership (woken by the leader's release announcement, polling at most a fifth of the TTL
 * for a leader that died and let its lease expire), runs the method for the term, then campaigns
 * again after a pause that doubles while terms keep ending by themselves (so a method that throws at
 * once never loops hot). An outage is logged once when it begins and once when it ends, and retried
 * with a backoff capped at half the TTL. Built on the runtime: acquisition, extension, shutdown
 * drain and release are `LockManager`'s.
 * @internal
 */
export class LeaderCampaign {
  private stopped = false;
  private wake: (() => void) | undefined;
  private unregister: (() => void) | undefined;
  private done: Promise<void> | undefined;
  /** Acquisition attempts (granted, busy or failed), for tests and diagnostics. */
  attempts = 0;

  constructor(
    private readonly manager: LockManager,
    private readonly plan: LeaderPlan,
    private readonly method: (leadership: Leadership) => unknown,
  ) {}

  /** Starts campaigning (once). */
  start(): void {
    if (this.done || this.manager.isClosing) return;
    this.unregister = this.manager.onShutdown(() => this.stop());
    this.done = this.loop();
  }

  /** Stops campaigning; a running term is stepped down by the runtime's own shutdown hook. */
  stop(): void {
    this.stopped = true;
    this.unregister?.();
    this.wake?.();
  }

  private get over(): boolean {
    return this.stopped || this.manager.isClosing;
  }

  private async loop(): Promise<void> {
    const { plan, manager } = this;
    const ttl = plan.run.ttl;
    const retry = manager.options.retry;
    // Poll an expired lease at most a fifth of the TTL late (releases wake the waiters at once).
    const campaignRetry: RetryOptions = {
      delay: retry.delay,
      maxDelay: Math.max(retry.delay, Math.min(retry.maxDelay, Math.floor(ttl / 5))),
    };
    let outage = 0;
    let rest = 0;
    while (!this.over) {
      this.attempts += 1;
      let lock;
      try {
        lock = await manager.acquireWith({
          keys: [leaderKey(plan.name)],
          ttl,
          options: { wait: ttl, store: plan.store, retry: campaignRetry },
          handler: plan.handler,
          stamp: true,
        });
      } catch (error) {
        if (this.over) break;
        if (error instanceof LockBusyError) continue;
        outage += 1;
        if (outage === 1) {
          const message = error instanceof Error ? error.message : String(error);
          if (error instanceof LockUnavailableError) {
            manager.events.notice('warn', Messages.leaderStoreDown(plan.handler, message));
          } else manager.events.notice('error', Messages.leaderFailed(plan.handler, message));
        }
        await this.pause(
          campaignPause(OUTAGE_MS, outage, Math.max(OUTAGE_MS, Math.floor(ttl / 2))),
        );
        continue;
      }
      if (outage > 0) {
        manager.events.notice('warn', Messages.leaderStoreBack(plan.handler, outage));
        outage = 0;
      }
      const began = monotonicNow();
      let lost = false;
      try {
        await runTerm(manager, lock, plan, async (leadership) => {
          try {
            await this.method(leadership);
          } finally {
            lost = leadership.signal.reason === 'lost';
          }
        });
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        manager.events.notice('error', Messages.leaderFailed(plan.handler, message));
      }
      if (this.over) break;
      // A term that ended by itself soon after it began counts towards a longer pause; a long one, or
      // one lost to the store, starts over.
      rest = lost ? 0 : monotonicNow() - began < ttl ? rest + 1 : 1;
      await this.pause(
        lost ? OUTAGE_MS : campaignPause(REST_MS, rest, Math.min(Math.max(ttl, 1_000), 30_000)),
      );
    }
  }

  /** Sleeps `ms`, or until the campaign stops. */
  private pause(ms: number): Promise<void> {
    if (this.over) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  /** Resolves once the loop has ended (after `stop()` or shutdown). */
  settled(): Promise<void> {
    return this.done ?? Promise.resolve();
  }
}
