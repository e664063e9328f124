import { DistributedLockError } from './distributed-lock.error';

/**
 * The store's backend does not implement an optional operation (`list` / `forceRelease` for
 * `LockAdmin` and the CLI). Thrown before any I/O.
 */
export class LockOperationUnsupportedError extends DistributedLockError {
  /**
   * @param store the store's name (`'default'` or one of the module's `stores`)
   * @param operation the backend method that is missing, e.g. `'list'`
   * @param message what is missing and which backends have it
   */
  constructor(
    /** The store's name. */
    readonly store: string,
    /** The backend method that is missing. */
    readonly operation: string,
    message: string,
  ) {
    super(message);
  }
}
