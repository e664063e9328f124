import type { LockBackend } from '../backend/lock-backend.interface';
import { DEFAULT_STORE } from '../distributed-lock.constants';
import { Messages } from '../distributed-lock.messages';
import { argumentError, type ErrorFactory } from '../options/validators';

/**
 * Every store of the module by name: the default one (`'default'`) first, then the module's
 * `stores`. Resolves the `store` option of calls and decorators.
 * @internal
 */
export class StoreRegistry {
  /** The backends by store name. */
  readonly stores: ReadonlyMap<string, LockBackend>;

  constructor(defaultBackend: LockBackend, named: ReadonlyMap<string, LockBackend>) {
    this.stores = new Map([[DEFAULT_STORE, defaultBackend], ...named]);
  }

  /**
   * The name of the store `store` names (`undefined`: the default one), checked.
   * @throws InvalidLockArgumentError (or what `fail` builds) for a name that is not configured
   */
  nameOf(store: unknown, fail: ErrorFactory = argumentError): string {
    if (store === undefined) return DEFAULT_STORE;
    if (typeof store !== 'string' || !this.stores.has(store)) {
      throw fail('store', Messages.unknownStore(store, [...this.stores.keys()]));
    }
    return store;
  }

  /** The backend of a store named by {@link nameOf}. */
  backendOf(store: string): LockBackend {
    return this.stores.get(store)!;
  }
}
