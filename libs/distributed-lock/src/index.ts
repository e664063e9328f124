export { DistributedLockModule } from './distributed-lock.module';
export { LockService } from './lock.service';
export { Exclusive } from './exclusive/exclusive.decorator';
export type {
  ExclusiveKey,
  ExclusiveMetadata,
  ExclusiveOptions,
  OnBusy,
} from './exclusive/exclusive-options.interface';
export { EXCLUSIVE_METADATA, MAX_KEY_LENGTH } from './distributed-lock.constants';
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
  AcquireOptions,
  DistributedLockLogger,
  DistributedLockModuleOptions,
  Lock,
  RedisConnection,
  RetryOptions,
  RunOptions,
} from './interfaces';
