import { DistributedLockConfigError } from './distributed-lock-config.error';

/**
 * Invalid argument to a `LockService` call (empty key, empty key list, bad `ttl`, ...). Thrown before
 * any backend call. A subclass of {@link DistributedLockConfigError}, with the same `field`.
 */
export class InvalidLockArgumentError extends DistributedLockConfigError {}
