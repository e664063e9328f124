import { Injectable } from '@nestjs/common';
import { LockManager } from '../lock-manager';
import { forceReleaseOf, forceReleaseTarget, listHeld } from './held-locks';
import type { ForceReleaseOptions, HeldLock, ListHeldOptions } from './held-lock.interface';

/**
 * What an operator needs during an incident: who holds which lock, and freeing a stuck one safely.
 * Injectable wherever the lock module is imported. `forceRelease` advances the key's fencing counter
 * in the same atomic step as it frees the key, so the stale holder (wherever it runs) finds its lock
 * lost on its next extend or release, never frees the next holder's lock, and every later fencing
 * token is higher than its own: a resource that checks tokens refuses its late writes.
 *
 * @example
 * ```ts
 * const admin = app.get(LockAdmin);
 * for (const held of await admin.list({ prefix: 'order:' })) console.log(held.key, held.identity);
 * await admin.forceRelease('order:42', { reason: 'INC-1234: holder stuck' }); // true when it was held
 * ```
 */
@Injectable()
export class LockAdmin {
  /** @internal */
  constructor(private readonly manager: LockManager) {}

  /**
   * The locks held now in one store (default `'default'`): plain locks, permits, leader elections and
   * cron tick claims, with holder identity, fencing token and expiry, sorted by key. Never the lock
   * values. On Redis it SCANs every instance (never `KEYS`) and lists a key a majority holds.
   * @throws InvalidLockArgumentError for a bad `prefix`, `limit` or unknown `store` (before any I/O)
   * @throws LockOperationUnsupportedError when the store's backend cannot list
   * @throws LockUnavailableError when the store could not answer (no majority)
   */
  async list(options: ListHeldOptions = {}): Promise<HeldLock[]> {
    const store = this.manager.storeName(options.store);
    return listHeld(this.manager.backendOf(store), store, options);
  }

  /**
   * Frees `key` now, whoever holds it, and advances its fencing counter in the same step. Emits a
   * `'force-released'` event (and logs a warning) when something was held.
   * @param key the key as listed (`HeldLock.key`); `kind: 'leader'` frees the leader election of
   * that name, `permit: n` one permit of a concurrency-limited key
   * @returns true when something was held, false for a free key
   * @throws InvalidLockArgumentError for a bad key or option, or an unknown `store` (before any I/O)
   * @throws LockOperationUnsupportedError when the store's backend cannot force-release
   * @throws LockUnavailableError when the store could not answer (no majority)
   */
  async forceRelease(key: string, options: ForceReleaseOptions = {}): Promise<boolean> {
    const store = this.manager.storeName(options.store);
    const target = forceReleaseTarget(key, options);
    const release = forceReleaseOf(this.manager.backendOf(store), store);
    const freed = await release(target.stored);
    if (freed) {
      this.manager.events.emit({
        type: 'force-released',
        keys: [target.stored],
        at: Date.now(),
        store,
        ...(target.reason === undefined ? {} : { reason: target.reason }),
      });
    }
    return freed;
  }
}
