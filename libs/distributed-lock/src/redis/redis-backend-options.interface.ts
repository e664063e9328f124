import type { LoggerService } from '@nestjs/common';
import type { Cluster, Redis, RedisOptions } from 'ioredis';

/** One Redis deployment the backend connects to itself: a `redis://` / `rediss://` URL or ioredis options. */
export type RedisConnection = string | RedisOptions;

/**
 * Options of {@link redisBackend}: the Redis (Redlock) store. `DistributedLockModule.forRoot({
 * connections })` is the shorthand for `forRoot({ backend: redisBackend({ connections }) })` with the
 * module's `keyPrefix`, `driftFactor`, `commandTimeout` and `logger`.
 */
export interface RedisBackendOptions {
  /**
   * Redis instances the backend creates, owns and closes on shutdown. Each entry is one independent
   * Redis deployment; a majority must agree (one entry = plain single-instance locking). They are
   * configured to fail fast (no offline queue, capped reconnects); your `RedisOptions` override that.
   * Exactly one of `connections` / `clients`.
   */
  connections?: RedisConnection[];
  /**
   * Existing ioredis clients you own; never closed by the backend. Give them
   * `enableOfflineQueue: false`, or lock calls can hang while Redis is down.
   */
  clients?: Array<Redis | Cluster>;
  /** Prefix of every lock key. @default 'lock:' */
  keyPrefix?: string;
  /** Redlock clock-drift factor: validity is reduced by `driftFactor * ttl + 2` ms. @default 0.01 */
  driftFactor?: number;
  /**
   * How long an instance may answer nothing, while commands wait for it, before it counts as
   * down (the stall watch). For `connections` and `clients` alike it also bounds each health probe
   * (`health()`, the Terminus check) and the wait for late votes of a split acquisition. For
   * `connections` only (clients the module creates): ioredis' own `commandTimeout` is set to 10×
   * this (at least 5 s) as a backstop, `connectTimeout` to 2× (at least 1 s), and shutdown waits at
   * most this long for QUIT. Your own `clients` keep their ioredis settings.
   * @default 500
   */
  commandTimeout?: number;
  /** Where warnings go (a Nest `LoggerService`), or `false`. @default new Logger('DistributedLock') */
  logger?: LoggerService | false;
}
