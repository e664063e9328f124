import { DistributedLockError } from './distributed-lock.error';

/**
 * Another owner holds the lock (after any waiting). The lock store itself answered: this is contention, not
 * an outage. An `@Exclusive()` HTTP route answers it with `409 Conflict`.
 */
export class LockBusyError extends DistributedLockError {
  /**
   * @param keys the lock keys that were requested (without the key prefix)
   * @param message human-readable description
   */
  constructor(
    /** The lock keys that were requested (without the key prefix). */
    readonly keys: string[],
    message: string,
  ) {
    super(message);
  }
}
