import { Inject } from '@nestjs/common';
import { EXCLUSIVE_METADATA } from '../distributed-lock.constants';
import { DistributedLockConfigError } from '../errors/distributed-lock-config.error';
import { LockService } from '../lock.service';
import { checkBoolean, checkInteger } from '../options/validators';
import type { ExclusiveMetadata, ExclusiveOptions } from './exclusive-options.interface';
import { runExclusiveHandler } from './exclusive.runner';

/** Property under which `@Exclusive()` gets `LockService` injected into the decorated class. */
export const LOCK_SERVICE_PROPERTY: unique symbol = Symbol('distributed-lock:lock-service');

const ON_BUSY = ['skip', 'wait', 'throw'];
/** Prototypes that already have the property injection (one per class, however many methods). */
const injected = new WeakSet<object>();

function validate(where: string, o: ExclusiveOptions): void {
  const fail = (field: string, message: string) =>
    new DistributedLockConfigError(`${where} @Exclusive ${field}`, message);
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
  if (o.ttl !== undefined) checkInteger('ttl', o.ttl, 1, undefined, fail);
  if (o.wait !== undefined) checkInteger('wait', o.wait, 0, undefined, fail);
  if (o.wait !== undefined && o.onBusy !== 'wait')
    throw fail('wait', "only applies with onBusy: 'wait'");
  if (o.lockAtLeastFor !== undefined)
    checkInteger('lockAtLeastFor', o.lockAtLeastFor, 0, undefined, fail);
  if (o.lockAtMostFor !== undefined)
    checkInteger('lockAtMostFor', o.lockAtMostFor, 1, undefined, fail);
  if (o.autoExtend !== undefined) checkBoolean('autoExtend', o.autoExtend, fail);
  if (o.claimTick !== undefined) checkBoolean('claimTick', o.claimTick, fail);
  if (o.sharedKey !== undefined) checkBoolean('sharedKey', o.sharedKey, fail);
}

/**
 * Runs the decorated method only while holding a distributed lock, across every replica. Works on
 * `@Cron` / `@Interval` / `@Timeout` handlers, HTTP routes, microservice handlers and plain provider
 * methods, written above or below their other decorators. The method becomes async.
 *
 * - Scheduled handlers skip when busy; `@Cron` handlers also claim each tick, so each scheduled tick
 *   runs once across replicas even when their clocks differ.
 * - Routes answer 409 when busy and 503 when Redis has no majority; the handler never runs unlocked.
 * - Inside the method, `LockService.current()` returns the `Lock` (its `signal`).
 *
 * @example
 * ```ts
 * @Cron(CronExpression.EVERY_MINUTE)
 * @Exclusive()
 * async sendDigest() { ... }
 *
 * @Post(':id/pay')
 * @Exclusive({ key: (id: string) => `order:${id}` })
 * pay(@Param('id') id: string) { ... }
 * ```
 */
export function Exclusive(options: ExclusiveOptions = {}): MethodDecorator {
  const injectLocks = Inject(LockService);
  return (target, propertyKey, descriptor) => {
    const className = (target as { constructor: { name: string } }).constructor.name;
    const methodName = String(propertyKey);
    validate(`${className}.${methodName}`, options);
    const original = descriptor.value as unknown;
    if (typeof original !== 'function') {
      throw new DistributedLockConfigError(
        `${className}.${methodName}`,
        '@Exclusive() applies to methods only',
      );
    }
    if (!injected.has(target)) {
      injectLocks(target, LOCK_SERVICE_PROPERTY);
      injected.add(target);
    }
    const metadata: ExclusiveMetadata = { options: { ...options }, className, methodName };
    const method = original as (...args: unknown[]) => unknown;
    const wrapper = function (
      this: Record<symbol, LockService | undefined>,
      ...args: unknown[]
    ): Promise<unknown> {
      return runExclusiveHandler(
        this[LOCK_SERVICE_PROPERTY],
        metadata,
        wrapper,
        this,
        method,
        args,
      );
    };
    // Keep every metadata key (route, schedule, pattern, guards, ...) and the name: a wrapper that
    // drops them silently unregisters the cron job or the route.
    for (const key of Reflect.getOwnMetadataKeys(method)) {
      Reflect.defineMetadata(key, Reflect.getOwnMetadata(key, method), wrapper);
    }
    Object.defineProperty(wrapper, 'name', { value: method.name, configurable: true });
    Reflect.defineMetadata(EXCLUSIVE_METADATA, metadata, wrapper);
    descriptor.value = wrapper as typeof descriptor.value;
    return descriptor;
  };
}
