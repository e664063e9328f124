import { AsyncLocalStorage } from 'node:async_hooks';
import { AutoExtender } from '../auto-extender';
import { Messages } from '../distributed-lock.messages';
import { LockUnavailableError } from '../errors/lock-unavailable.error';
import type { LockEvents } from '../events/lock-events';
import type { Lock } from '../interfaces/lock.interface';
import type { LockHandle } from '../lock-handle';
import type { ResolvedRun } from '../options/run-options';
import { monotonicNow } from '../utils/clock';
import type { LockRegistry } from './lock-registry';

/**
 * Runs work under a held lock: inside the lock's async context (`LockService.current()`), kept
 * extended, counted as running for shutdown, and released (or left to expire, `lockAtLeastFor`)
 * when it ends.
 * @internal
 */
export class WorkRunner {
  private readonly context = new AsyncLocalStorage<Lock>();

  constructor(
    private readonly registry: LockRegistry,
    private readonly events: LockEvents,
  ) {}

  /** The lock of the work this code runs inside. */
  current(): Lock | undefined {
    return this.context.getStore();
  }

  /**
   * Runs `work` holding `lock`, keeping it extended; releases (or shortens) it afterwards. The work
   * counts as running (shutdown waits for it) from this call on.
   */
  run<T>(
    lock: LockHandle,
    work: (lock: Lock) => Promise<T> | T,
    run: ResolvedRun,
    committed = false,
  ): Promise<T> {
    if (this.registry.isClosing && !committed) {
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
    return this.registry.run(
      lock,
      (async () => {
        try {
          return await this.context.run(lock, () => work(lock));
        } finally {
          await extender?.stop();
          const keepFor = run.lockAtLeastFor - (monotonicNow() - started);
          await this.releaseQuietly(lock, keepFor);
        }
      })(),
    );
  }

  /** Releases `lock` (or lets it expire in `keepFor` ms); a failure is logged, never thrown. */
  async releaseQuietly(lock: LockHandle, keepFor = 0): Promise<void> {
    try {
      await (keepFor >= 1 ? lock.expireIn(keepFor) : lock.release());
    } catch (error) {
      this.events.notice('warn', Messages.releaseFailed(lock.keys, (error as Error).message));
    }
  }
}
