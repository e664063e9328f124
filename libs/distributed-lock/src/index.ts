export { DistributedLockModule } from './distributed-lock.module';
export { LockService } from './lock.service';
export { LockAdmin } from './admin/lock-admin';
export type {
  ForceReleaseOptions,
  HeldLock,
  HeldLockKind,
  ListHeldOptions,
} from './admin/held-lock.interface';
export { Exclusive } from './exclusive/exclusive.decorator';
export { Leader } from './leader/leader.decorator';
export type {
  LeadOptions,
  LeaderInfo,
  LeaderInfoOptions,
  LeaderOptions,
  Leadership,
} from './leader/leader.interface';
export {
  ExclusiveScheduler,
  type ExclusiveCronOptions,
  type ExclusiveJob,
} from './exclusive/exclusive-scheduler';
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
  type BackendHeldKey,
  type BackendHolder,
  type BackendListQuery,
  type BackendLock,
} from './backend/lock-backend.interface';
export {
  DistributedLockConfigError,
  DistributedLockError,
  InvalidLockArgumentError,
  LockBusyError,
  LockLostError,
  LockOperationUnsupportedError,
  LockUnavailableError,
  type LockVotes,
} from './errors';
export type {
  LeaderStepDownReason,
  LockAcquiredEvent,
  LockBusyEvent,
  LockElectedEvent,
  LockEvent,
  LockEventBase,
  LockExtendedEvent,
  LockForceReleasedEvent,
  LockLostEvent,
  LockLostReason,
  LockReleasedEvent,
  LockSkippedEvent,
  LockSkipReason,
  LockSteppedDownEvent,
  LockUnavailableEvent,
} from './events/lock-event.interface';
export type {
  AcquireOptions,
  DistributedLockLogger,
  DistributedLockModuleOptions,
  IsLockedOptions,
  Lock,
  RedisConnection,
  RetryOptions,
  RunOptions,
} from './interfaces';
