import { Inject } from '@nestjs/common';
import { EXCLUSIVE_METADATA } from '../distributed-lock.constants';
import { DistributedLockConfigError } from '../errors/distributed-lock-config.error';
import { checkRunFields } from '../options/run-options';
import { checkExclusiveFields, exclusiveError } from './exclusive-plan';
import type { ExclusiveMetadata, ExclusiveOptions } from './exclusive-options.interface';
import { ExclusivePlans } from './exclusive-plans';
import { runExclusiveHandler } from './exclusive.runner';

/** Property under which `@Exclusive()` gets the lock machinery injected into the decorated class. */
const PLANS_PROPERTY: unique symbol = Symbol('distributed-lock:exclusive-plans');

/** Prototypes that already have the property injection (one per class, however many methods). */
const injected = new WeakSet<object>();

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
  const injectPlans = Inject(ExclusivePlans);
  return (target, propertyKey, descriptor) => {
    const className = (target as { constructor: { name: string } }).constructor.name;
    const methodName = String(propertyKey);
    // What can be checked without the module options fails here, when the class is defined; the
    // rest (TTL against the extension threshold) fails at bootstrap, in the explorer.
    const fail = exclusiveError(`${className}.${methodName}`);
    checkExclusiveFields(options, fail);
    checkRunFields(options, fail);
    const original = descriptor.value as unknown;
    if (typeof original !== 'function') {
      throw new DistributedLockConfigError(
        `${className}.${methodName}`,
        '@Exclusive() applies to methods only',
      );
    }
    if (!injected.has(target)) {
      injectPlans(target, PLANS_PROPERTY);
      injected.add(target);
    }
    const metadata: ExclusiveMetadata = { options: { ...options }, className, methodName };
    const method = original as (...args: unknown[]) => unknown;
    const wrapper = function (
      this: Record<symbol, ExclusivePlans | undefined>,
      ...args: unknown[]
    ): Promise<unknown> {
      return runExclusiveHandler(this[PLANS_PROPERTY], metadata, wrapper, this, method, args);
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
