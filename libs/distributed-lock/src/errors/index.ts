export { DistributedLockError } from './distributed-lock.error';
export { LockBusyError } from './lock-busy.error';
export { LockUnavailableError, type LockVotes } from './lock-unavailable.error';
export { LockLostError } from './lock-lost.error';
export { DistributedLockConfigError } from './distributed-lock-config.error';
export { InvalidLockArgumentError } from './invalid-lock-argument.error';
export { LockOperationUnsupportedError } from './lock-operation-unsupported.error';
