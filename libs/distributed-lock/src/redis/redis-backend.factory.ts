import type { LockBackend } from '../backend/lock-backend.interface';
import type { RedisBackendOptions } from './redis-backend-options.interface';
import { RedisLockBackend } from './redis.backend';
import { resolveRedisOptions } from './resolve-redis-options';

/**
 * The Redis (Redlock) backend as a factory, like `postgresBackend()`: for `forRoot({ backend })` or
 * a named store (`stores: { cache: redisBackend({ connections }) }`). `forRoot({ connections })`
 * stays the shorthand for the default store. Needs the optional peer `ioredis` (loaded when the
 * backend creates its connections; `clients` are yours already).
 * @throws DistributedLockConfigError for invalid options, naming the field
 * @example
 * ```ts
 * DistributedLockModule.forRoot({
 *   backend: redisBackend({ connections: ['redis://a:6379', 'redis://b:6379', 'redis://c:6379'] }),
 * });
 * ```
 */
export function redisBackend(options: RedisBackendOptions): LockBackend {
  return new RedisLockBackend(resolveRedisOptions(options));
}
