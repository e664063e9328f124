import { DistributedLockError } from './distributed-lock.error';

/** `extend()` or `release()` found that the lock is no longer ours (expired, or taken by someone else). */
export class LockLostError extends DistributedLockError {
  /**
   * @param keys the lock keys (without the key prefix)
   * @param message human-readable description
   */
  constructor(
    /** The lock keys (without the key prefix). */
    readonly keys: string[],
    message: string,
  ) {
    super(message);
  }
}
