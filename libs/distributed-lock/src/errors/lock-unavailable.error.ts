import { DistributedLockError } from './distributed-lock.error';

/** How the lock instances voted on one operation (Redis: one vote per instance; PostgreSQL: one). */
export interface LockVotes {
  /** Instances configured. */
  readonly total: number;
  /** Votes needed for a majority. */
  readonly quorum: number;
  /** Instances that granted the operation. */
  readonly granted: number;
  /** Instances that answered "held by another owner". */
  readonly held: number;
  /** Instances that failed (unreachable, timed out, errored). */
  readonly failed: number;
}

/**
 * A majority of the lock instances (Redis deployments, the database) could not be reached or did not answer in time, or acquisition was so
 * slow that the lock would already be (nearly) expired. The lock was **not** taken: no exclusive work
 * runs (fail closed). An `@Exclusive()` HTTP route answers it with `503 Service Unavailable`.
 */
export class LockUnavailableError extends DistributedLockError {
  /**
   * @param keys the lock keys that were requested (without the key prefix)
   * @param message human-readable description
   * @param votes how the instances voted, when known
   * @param cause a sanitized copy of the first backend error (message only)
   */
  constructor(
    /** The lock keys that were requested (without the key prefix). */
    readonly keys: string[],
    message: string,
    /** How the instances voted, when known. */
    readonly votes?: LockVotes,
    cause?: Error,
  ) {
    super(message, cause ? { cause } : undefined);
  }
}
