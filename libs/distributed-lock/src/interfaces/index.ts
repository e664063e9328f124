export type { AcquireOptions, IsLockedOptions, RunOptions } from './acquire-options.interface';
export type { Lock } from './lock.interface';
export type { DistributedLockLogger } from './logger.interface';
export type { DistributedLockModuleOptions, RedisConnection } from './module-options.interface';
export type { RetryOptions } from './retry-options.interface';
