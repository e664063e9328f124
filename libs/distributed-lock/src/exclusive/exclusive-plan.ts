import { DistributedLockConfigError } from '../errors/distributed-lock-config.error';
import type { ResolvedLockOptions } from '../options/resolved-options';
import { resolveRun, type ResolvedRun } from '../options/run-options';
import { checkBoolean, checkInteger, type ErrorFactory } from '../options/validators';
import { checkLimit } from '../backend/permits';
import { Messages } from '../distributed-lock.messages';
import type { CronMetadata } from './cron-tick';
import type { ExclusiveMetadata, ExclusiveOptions, OnBusy } from './exclusive-options.interface';
import { cronMetadata, handlerKind, isScheduled, type HandlerKind } from './handler-kind';

const ON_BUSY: readonly OnBusy[] = ['skip', 'wait', 'throw'];

/** Everything an invocation of one `@Exclusive()` method needs, resolved once. @internal */
export interface ExclusivePlan {
  /** `'ClassName.methodName'`. */
  readonly where: string;
  readonly kind: HandlerKind;
  readonly scheduled: boolean;
  readonly onBusy: OnBusy;
  /** `wait` for the acquisition: `0` unless `onBusy: 'wait'`. */
  readonly wait: number | undefined;
  readonly run: ResolvedRun;
  /** The `@Cron` metadata when ticks are claimed, else `undefined`. */
  readonly claimCron: CronMetadata | undefined;
  /** The store it locks in (checked against the module's stores at bootstrap). */
  readonly store: string;
  /** Holders at once (1: a mutex). */
  readonly limit: number;
}

/** The error factory for one decorated method: fields read `Class.method @Exclusive <field>`. */
export function exclusiveError(where: string): ErrorFactory {
  return (field, message) =>
    new DistributedLockConfigError(`${where} @Exclusive ${field}`, message);
}

/**
 * Checks the fields only `@Exclusive()` has (key, onBusy, wait, claimTick, sharedKey). Run fields
 * (ttl, autoExtend, lockAtLeastFor, lockAtMostFor) are `checkRunFields`'s.
 * @internal
 */
export function checkExclusiveFields(o: ExclusiveOptions, fail: ErrorFactory): void {
  if (o === null || typeof o !== 'object') throw fail('options', 'must be an object');
  if (
    o.key !== undefined &&
    !((typeof o.key === 'string' && o.key.length > 0) || typeof o.key === 'function')
  ) {
    throw fail(
      'key',
      'must be a non-empty string or a function of the method arguments returning one',
    );
  }
  if (o.onBusy !== undefined && !ON_BUSY.includes(o.onBusy)) {
    throw fail(
      'onBusy',
      `must be one of ${ON_BUSY.map((v) => `'${v}'`).join(', ')}, got ${JSON.stringify(o.onBusy)}`,
    );
  }
  if (o.wait !== undefined) checkInteger('wait', o.wait, 0, undefined, fail);
  if (o.wait !== undefined && o.onBusy !== 'wait')
    throw fail('wait', "only applies with onBusy: 'wait'");
  if (o.claimTick !== undefined) checkBoolean('claimTick', o.claimTick, fail);
  if (o.sharedKey !== undefined) checkBoolean('sharedKey', o.sharedKey, fail);
  if (o.store !== undefined && (typeof o.store !== 'string' || o.store.length === 0)) {
    throw fail('store', 'must be the name of a store (a non-empty string)');
  }
  checkLimit(o.limit, fail);
}

/**
 * Resolves one decorated method against the module options: handler kind (from the metadata of the
 * decorators around it), busy behaviour, run options. Runs at bootstrap.
 * @throws DistributedLockConfigError naming the handler and the option
 * @internal
 */
export function planExclusive(
  meta: ExclusiveMetadata,
  fn: object,
  module: Pick<ResolvedLockOptions, 'ttl' | 'extendThreshold' | 'minTtl'>,
  /** Checks the store name against the module's stores (throws through `fail`). */
  storeName: (store: string | undefined, fail: ErrorFactory) => string,
): ExclusivePlan {
  const where = meta.where ?? `${meta.className}.${meta.methodName}`;
  const fail = exclusiveError(where);
  const o = meta.options;
  checkExclusiveFields(o, fail);
  const kind = handlerKind(fn);
  const scheduled = isScheduled(kind);
  const onBusy = o.onBusy ?? (scheduled ? 'skip' : 'throw');
  const limit = checkLimit(o.limit, fail);
  if (scheduled && limit > 1) throw fail('limit', Messages.limitOnSchedule);
  return {
    where,
    kind,
    scheduled,
    onBusy,
    wait: onBusy === 'wait' ? o.wait : 0,
    run: resolveRun(o, module, fail),
    claimCron: kind === 'cron' && o.claimTick !== false ? cronMetadata(fn) : undefined,
    store: storeName(o.store, fail),
    limit,
  };
}
