import { DistributedLockError } from './distributed-lock.error';

/**
 * Invalid module options, decorator options or call arguments. Thrown before any backend call; at
 * bootstrap it makes the application fail to start.
 */
export class DistributedLockConfigError extends DistributedLockError {
  /**
   * @param field the option or argument at fault, e.g. `ttl` or `retry.count`
   * @param message what is wrong and which values are allowed
   */
  constructor(
    /** The option or argument at fault, e.g. `ttl` or `retry.count`. */
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}
