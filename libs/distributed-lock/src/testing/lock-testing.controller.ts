import { Injectable } from '@nestjs/common';
import { LockManager } from '../lock-manager';
import { normalizeKeys } from '../utils/keys';
import { InMemoryLockBackend } from './in-memory.backend';

/**
 * Drives the in-memory lock store of `DistributedLockTestingModule` from a unit test: another replica
 * holding a key, a lease ending under its holder, an outage. Injectable wherever the testing module
 * is imported (it is global).
 *
 * @example
 * ```ts
 * const locks = moduleRef.get(LockTestingController);
 * locks.holdElsewhere('order:42');                  // another replica is paying order 42
 * await expect(controller.pay('42')).rejects.toThrow(ConflictException); // 409
 * locks.setUnavailable(true);                       // the lock store is down
 * await expect(controller.pay('42')).rejects.toThrow(ServiceUnavailableException); // 503
 * ```
 */
@Injectable()
export class LockTestingController {
  /** @internal */
  constructor(
    private readonly store: InMemoryLockBackend,
    private readonly manager: LockManager,
  ) {}

  /**
   * Another replica takes `key`: until `ttl` ms have passed, or, without `ttl`, until `expire(key)` or
   * `reset()`. Meanwhile `tryAcquire` resolves `null`, `acquire` and plain `@Exclusive()` methods throw
   * `LockBusyError` (after any waiting), routes answer 409 and scheduled handlers skip. The other
   * replica's fencing token is issued like any holder's.
   * @param key the lock key, as given to `LockService` or `@Exclusive({ key })`
   * @param ttl how long the other replica holds it, in ms (fake timers advance it too)
   * @returns the other replica's fencing token (your next token for `key` is higher)
   * @throws LockBusyError when `key` is already held (by this app or elsewhere)
   * @throws InvalidLockArgumentError for an invalid key or `ttl`
   */
  holdElsewhere(key: string, ttl?: number): number {
    const [only] = normalizeKeys(key);
    return this.store.holdElsewhere(only, ttl);
  }

  /**
   * The lease holding `key` ends now, as if its TTL had passed: if this app holds it, the lock's
   * `signal` aborts with a `LockLostError`, `extend()` throws `LockLostError` and `runExclusive` stops
   * extending it; every key of that lock is free for the next holder, and the stale holder's
   * `release()` (a `LockLostError`) never frees a later holder's lock. Also ends `holdElsewhere` and
   * cron tick claims.
   * @returns false when nobody held `key`
   */
  expire(key: string): boolean {
    const [only] = normalizeKeys(key);
    const freed = this.store.expire(only);
    for (const k of freed) this.manager.expireHeld(k);
    return freed.length > 0;
  }

  /**
   * Simulates the lock store being down (`true`) or back (`false`): every lock operation throws
   * `LockUnavailableError`, never "busy". `tryAcquire` throws instead of resolving `null`, routes answer
   * 503, scheduled handlers skip (fail closed), extensions fail (a running lock is lost once its TTL
   * passes) and releases fail (the lock is left to expire by its TTL, as on Redis).
   * @param unavailable whether the store is down
   * @default true
   */
  setUnavailable(unavailable = true): void {
    this.store.setUnavailable(unavailable);
  }

  /**
   * Back to an empty, reachable store: ends the outage and every lease (this app's locks are lost as
   * with `expire`, `holdElsewhere` and tick claims end). Fencing tokens keep increasing. Call it in
   * `afterEach` when several tests share one module.
   */
  reset(): void {
    for (const key of this.store.reset()) this.manager.expireHeld(key);
  }
}
