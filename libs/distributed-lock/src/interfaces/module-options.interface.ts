import type { Cluster, Redis, RedisOptions } from 'ioredis';
import type { DistributedLockLogger } from './logger.interface';
import type { RetryOptions } from './retry-options.interface';

/** One Redis deployment the module connects to itself: a `redis://` / `rediss://` URL or ioredis options. */
export type RedisConnection = string | RedisOptions;

/** Options of `DistributedLockModule.forRoot` / `forRootAsync`. All times are in milliseconds. */
export interface DistributedLockModuleOptions {
  /**
   * Redis instances the module creates, owns and closes on shutdown. Each entry is one independent
   * Redis deployment; a majority must agree (one entry = plain single-instance locking). The module
   * configures them to fail fast (no offline queue, command timeout, capped reconnects); your
   * `RedisOptions` override those settings.
   * @example ['redis://redis-a:6379', 'redis://redis-b:6379', 'redis://redis-c:6379']
   */
  connections?: RedisConnection[];
  /**
   * Existing ioredis clients you own; never closed by the module. Give them
   * `enableOfflineQueue: false` and a `commandTimeout`, or lock calls can hang while Redis is down.
   */
  clients?: Array<Redis | Cluster>;
  /**
   * Prefix of every lock key in Redis.
   * @default 'lock:'
   */
  keyPrefix?: string;
  /**
   * Default lock time-to-live.
   * @default 30000
   */
  ttl?: number;
  /** Backoff for acquisitions that wait. @default { count: 5, delay: 50, maxDelay: 1000, jitter: 0.25 } */
  retry?: RetryOptions;
  /**
   * Redlock clock-drift factor: validity is reduced by `driftFactor * ttl + 2` ms.
   * @default 0.01
   */
  driftFactor?: number;
  /**
   * Auto-extension renews a lock when this much validity is left. Must leave at least 100 ms of the
   * TTL before it. When omitted: half of the lock's TTL.
   */
  extendThreshold?: number;
  /**
   * How long shutdown waits for running exclusive work before aborting its signal and releasing.
   * @default 10000
   */
  shutdownTimeout?: number;
  /**
   * Command timeout applied to module-owned `connections` (ignored for `clients`).
   * @default 500
   */
  commandTimeout?: number;
  /** A Nest `LoggerService`, or `false` to log nothing. @default new Logger('DistributedLock') */
  logger?: DistributedLockLogger;
}
