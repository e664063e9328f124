import type { Cluster, Redis } from 'ioredis';
import type { LockBackend } from '../backend/lock-backend.interface';
import type { RedisConnection } from '../redis/redis-backend-options.interface';
import type { DistributedLockLogger } from './logger.interface';
import type { RetryOptions } from './retry-options.interface';

export type { RedisConnection } from '../redis/redis-backend-options.interface';

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
   * Another store instead of the `connections` / `clients` shorthand, e.g.
   * `postgresBackend({ connectionString })` from `nestjs-distributed-lock/postgres`, or
   * `redisBackend({ connections })`. The module's Redis options (`keyPrefix`, `driftFactor`,
   * `commandTimeout`) do not apply to it: give the factory its own.
   */
  backend?: LockBackend;
  /**
   * More stores beside the default one, by name: `store: 'name'` on a call, `@Exclusive()` (and the
   * other decorators) locks there. The default store (`connections` / `clients` / `backend`) is
   * named `'default'`, which is why that name is taken. Each is connected at bootstrap and closed
   * on shutdown like the default store.
   * @example
   * ```ts
   * stores: { db: postgresBackend({ connectionString: process.env.DATABASE_URL }) }
   * ```
   */
  stores?: Record<string, LockBackend>;
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
   * How long a Redis instance may answer nothing, while commands wait for it, before it counts as
   * down (the stall watch). For `connections` and `clients` alike it also bounds each health probe
   * (`health()`, the Terminus check) and the wait for late votes of a split acquisition. For
   * `connections` only (clients the module creates): ioredis' own `commandTimeout` is set to 10×
   * this (at least 5 s) as a backstop, `connectTimeout` to 2× (at least 1 s), and shutdown waits at
   * most this long for QUIT. Your own `clients` keep their ioredis settings.
   * @default 500
   */
  commandTimeout?: number;
  /** A Nest `LoggerService`, or `false` to log nothing. @default new Logger('DistributedLock') */
  logger?: DistributedLockLogger;
  /**
   * The `lock.name` attribute of the OpenTelemetry metrics and spans for a lock taken through
   * `LockService`, from its (first) key. It must have low cardinality: one name per kind of
   * resource, never an id. Locks of `@Exclusive()` methods are always named after the handler
   * (`'ClassName.methodName'`). If it throws or returns no string, the default rule applies (and a
   * warning is logged once).
   * @default the key up to its first `:` (`'order:42'` → `'order'`)
   * @example
   * ```ts
   * // keys like 'tenant-7:invoice:42' → 'invoice'
   * metricName: (key) => key.split(':')[1] ?? key
   * ```
   */
  metricName?: (key: string) => string;
  /**
   * Record OpenTelemetry metrics (`lock.acquire.duration`, `lock.held`, `lock.lost`,
   * `lock.skipped`) and `lock.acquire` spans through the global OpenTelemetry providers when
   * `@opentelemetry/api` is installed. Without the package nothing is recorded either way. `false`
   * turns it off for this module: e.g. `@opentelemetry/api` came in through another dependency and
   * you export no lock telemetry, so lock events are not even built when nothing else reads them.
   * @default true
   */
  openTelemetry?: boolean;
  /**
   * Who this replica is: stored beside every lock it takes (in the same write, never in place of the
   * secret lock value), and shown by `LockAdmin.list()`, the CLI and `LockService.leader()`. A
   * non-empty string of at most 200 characters without control characters.
   * @default `${os.hostname()}:${process.pid}`
   * @example process.env.POD_NAME
   */
  identity?: string;
}
