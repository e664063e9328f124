import type { LoggerService } from '@nestjs/common';
import type { Cluster, Redis } from 'ioredis';
import type { LockBackend } from '../backend/lock-backend.interface';
import type { RedisConnection } from '../interfaces/module-options.interface';

/** Backoff with every field filled in. @internal */
export interface ResolvedRetry {
  count: number;
  delay: number;
  maxDelay: number;
  jitter: number;
}

/** Module options after validation, with defaults applied. @internal */
export interface ResolvedLockOptions {
  connections?: RedisConnection[];
  clients?: Array<Redis | Cluster>;
  backend?: LockBackend;
  /** The named stores beside the default one (`stores`), by name. */
  stores: ReadonlyMap<string, LockBackend>;
  keyPrefix: string;
  ttl: number;
  retry: ResolvedRetry;
  driftFactor: number;
  /** The smallest `ttl` that can yield a valid lock with `driftFactor` (see backend/validity.ts). */
  minTtl: number;
  /** `undefined`: half of each lock's TTL. */
  extendThreshold?: number;
  shutdownTimeout: number;
  commandTimeout: number;
  logger: LoggerService | null;
  /** `lock.name` of a `LockService` lock in OpenTelemetry; `undefined`: the key up to its first `:`. */
  metricName?: (key: string) => string;
  /** Record OpenTelemetry metrics and spans when `@opentelemetry/api` is installed. */
  openTelemetry: boolean;
  /** Who this replica is, stored beside each lock it takes. */
  identity: string;
}

/** Documented defaults. @internal */
export const DEFAULTS = {
  keyPrefix: 'lock:',
  ttl: 30_000,
  retry: { count: 5, delay: 50, maxDelay: 1_000, jitter: 0.25 } satisfies ResolvedRetry,
  driftFactor: 0.01,
  shutdownTimeout: 10_000,
  commandTimeout: 500,
} as const;
