export { DistributedLockModule } from './distributed-lock.module';
export { LockService } from './lock.service';
export { Exclusive } from './exclusive/exclusive.decorator';
export type {
  ExclusiveKey,
  ExclusiveOptions,
  OnBusy,
} from './exclusive/exclusive-options.interface';
export { MAX_KEY_LENGTH } from './distributed-lock.constants';
export { redisBackend } from './redis/redis-backend.factory';
export type { RedisBackendOptions } from './redis/redis-backend-options.interface';
export {
  LockBackend,
  type BackendAcquireOptions,
  type BackendContext,
  type BackendHealth,
  type BackendLock,
} from './backend/lock-backend.interface';
export {
  DistributedLockConfigError,
  DistributedLockError,
  InvalidLockArgumentError,
  LockBusyError,
  LockLostError,
  LockUnavailableError,
  type LockVotes,
} from './errors';
export type {
  LockAcquiredEvent,
  LockBusyEvent,
  LockEvent,
  LockEventBase,
  LockExtendedEvent,
  LockLostEvent,
  LockLostReason,
  LockReleasedEvent,
  LockSkippedEvent,
  LockSkipReason,
  LockUnavailableEvent,
} from './events/lock-event.interface';
export type {
  AcquireOptions,
  DistributedLockLogger,
  DistributedLockModuleOptions,
  Lock,
  RedisConnection,
  RetryOptions,
  RunOptions,
} from './interfaces';
