import { DistributedLockConfigError } from '../errors/distributed-lock-config.error';
import { InvalidLockArgumentError } from '../errors/invalid-lock-argument.error';
import { LockBusyError } from '../errors/lock-busy.error';
import { LockUnavailableError } from '../errors/lock-unavailable.error';
import { Messages } from '../distributed-lock.messages';
import type { LockService } from '../lock.service';
import { normalizeKeys } from '../utils/keys';
import { cronTick } from './cron-tick';
import { mapLockError } from './error-mapping';
import type { ExclusiveMetadata } from './exclusive-options.interface';
import { cronMetadata, handlerKind, isScheduled, type HandlerKind } from './handler-kind';

const kinds = new WeakMap<object, HandlerKind>();
/** Run options per decorated method, validated once per LockService (module options fill defaults). */
const runs = new WeakMap<
  ExclusiveMetadata,
  { locks: LockService; run: ReturnType<LockService['resolveRun']> }
>();

function runOptions(
  locks: LockService,
  meta: ExclusiveMetadata,
): ReturnType<LockService['resolveRun']> {
  const cached = runs.get(meta);
  if (cached?.locks === locks) return cached.run;
  const run = locks.resolveRun(meta.options);
  runs.set(meta, { locks, run });
  return run;
}

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
 * @internal
 */
export async function runExclusiveHandler(
  locks: LockService | undefined,
  meta: ExclusiveMetadata,
  wrapper: object,
  instance: unknown,
  method: (...args: unknown[]) => unknown,
  args: unknown[],
): Promise<unknown> {
  const where = `${meta.className}.${meta.methodName}`;
  if (!locks) {
    throw new DistributedLockConfigError(where, Messages.notInjected);
  }
  let kind = kinds.get(wrapper);
  if (kind === undefined) {
    kind = handlerKind(wrapper);
    kinds.set(wrapper, kind);
  }
  const scheduled = isScheduled(kind);
  const o = meta.options;
  const onBusy = o.onBusy ?? (scheduled ? 'skip' : 'throw');
  const logger = locks.logger;
  try {
    const [key] = normalizeKeys(resolveKey(meta, args));
    if (locks.isClosing) {
      if (scheduled) {
        logger?.debug?.(Messages.skipShutdown(where));
        return undefined;
      }
      throw new LockUnavailableError([key], Messages.shuttingDown);
    }
    const run = runOptions(locks, meta);
    if (kind === 'cron' && o.claimTick !== false) {
      const tick = cronTick(cronMetadata(wrapper), Date.now());
      if (tick && !(await locks.claimOnce(`${key}:tick:${tick.at}`, tick.period))) {
        logger?.debug?.(Messages.skipTick(where, key, tick.at));
        return undefined;
      }
    }
    const lock = await locks.acquireHandle(
      [key],
      run.ttl,
      onBusy === 'wait' ? { wait: o.wait } : { wait: 0 },
    );
    if (scheduled) logger?.verbose?.(Messages.acquired(where, key));
    return await locks.runHolding(lock, () => method.apply(instance, args), run);
  } catch (error) {
    if (error instanceof LockBusyError && onBusy === 'skip') {
      logger?.debug?.(Messages.skipBusy(where, error.keys.join(',')));
      return undefined;
    }
    if (scheduled && error instanceof LockUnavailableError) {
      // Fail closed: the job does not run. Logged here once, not rethrown for the scheduler to log again.
      logger?.error(Messages.scheduledUnavailable(where, error.message));
      return undefined;
    }
    throw mapLockError(error, kind);
  }
}
