import { tickClaimKey } from '../backend/held-key';
import { InvalidLockArgumentError } from '../errors/invalid-lock-argument.error';
import { DistributedLockConfigError } from '../errors/distributed-lock-config.error';
import { LockBusyError } from '../errors/lock-busy.error';
import { LockUnavailableError } from '../errors/lock-unavailable.error';
import { Messages } from '../distributed-lock.messages';
import { normalizeKeys } from '../utils/keys';
import { cronTick } from './cron-tick';
import { mapLockError } from './error-mapping';
import type { ExclusiveMetadata } from './exclusive-options.interface';
import type { ExclusivePlans } from './exclusive-plans';

/** The lock key of one invocation. @internal */
export function resolveKey(meta: ExclusiveMetadata, args: unknown[]): string {
  const { key } = meta.options;
  if (key === undefined) return `${meta.className}.${meta.methodName}`;
  if (typeof key === 'string') return key;
  const value = (key as (...a: unknown[]) => unknown)(...args);
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidLockArgumentError(
      `${meta.className}.${meta.methodName} @Exclusive key`,
      `the key function must return a non-empty string, got ${value === '' ? '""' : typeof value}`,
    );
  }
  return value;
}

/**
 * One invocation of an `@Exclusive()` method: (for cron) claim the tick, take the job lock, run with
 * auto-extension, release. Busy → skip / wait / throw; transport-specific errors for routes and RPC.
 * Options were resolved once, at bootstrap (`ExclusivePlans.planFor`).
 * @internal
 */
export async function runExclusiveHandler(
  plans: ExclusivePlans | undefined,
  meta: ExclusiveMetadata,
  wrapper: object,
  instance: unknown,
  method: (...args: unknown[]) => unknown,
  args: unknown[],
): Promise<unknown> {
  if (!plans) {
    throw new DistributedLockConfigError(
      `${meta.className}.${meta.methodName}`,
      Messages.notInjected,
    );
  }
  const { manager } = plans;
  const plan = plans.planFor(wrapper, meta);
  let keys: string[] | undefined;
  let tick: number | undefined;
  /** Set while a tick claim is in flight or won: shutdown waits, and the claimed run goes ahead. */
  let leave: (() => void) | undefined;
  try {
    keys = normalizeKeys(resolveKey(meta, args));
    if (manager.isClosing) {
      if (plan.scheduled) return plans.skipped(plan, keys, 'shutdown');
      throw new LockUnavailableError(keys, Messages.shuttingDown);
    }
    if (plan.claimCron) {
      const claim = cronTick(plan.claimCron, Date.now());
      if (claim) {
        tick = claim.at;
        // Every other replica skips a claimed tick: from here a shutdown beginning must not stop
        // this replica from running it, or no replica would (the tick would be lost).
        leave = manager.enter();
        if (!(await manager.claim(tickClaimKey(keys[0], claim.at), claim.period, plan.store))) {
          return plans.skipped(plan, keys, 'tick-claimed', { tick });
        }
      }
    }
    const committed = leave !== undefined;
    const lock = await manager.acquire(
      keys,
      plan.run.ttl,
      { wait: plan.wait, store: plan.store, limit: plan.limit },
      plan.where,
      committed,
    );
    const result = manager.runHolding(
      lock,
      () => method.apply(instance, args),
      plan.run,
      committed,
    );
    leave?.(); // running now: shutdown waits for it as for any running work
    return await result;
  } catch (error) {
    if (keys && error instanceof LockBusyError && plan.onBusy === 'skip') {
      return plans.skipped(plan, keys, 'busy', { tick });
    }
    if (keys && plan.scheduled && error instanceof LockUnavailableError) {
      // Shutdown began while this run was acquiring: it never started, nothing is held.
      if (manager.isClosing && leave === undefined) {
        return plans.skipped(plan, keys, 'shutdown', { tick });
      }
      // Fail closed: the job does not run; the log listener reports it once.
      return plans.skipped(plan, keys, 'unavailable', { tick, error: error.message });
    }
    throw mapLockError(error, plan.kind);
  } finally {
    leave?.();
  }
}
