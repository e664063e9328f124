import { hostname } from 'node:os';
import { Logger, type LoggerService } from '@nestjs/common';
import { smallestTtl } from '../backend/validity';
import type { LockBackend } from '../backend/lock-backend.interface';
import { DEFAULT_STORE, MIN_EXTEND_WINDOW_MS } from '../distributed-lock.constants';
import { Messages } from '../distributed-lock.messages';
import type { DistributedLockModuleOptions } from '../interfaces/module-options.interface';
import type { RetryOptions } from '../interfaces/retry-options.interface';
import {
  checkCommandTimeout,
  checkDriftFactor,
  checkKeyPrefix,
  checkRedisConnections,
} from '../redis/resolve-redis-options';
import { DEFAULTS, type ResolvedLockOptions, type ResolvedRetry } from './resolved-options';
import {
  checkBoolean,
  checkTtl,
  checkInteger,
  checkNumber,
  configError,
  type ErrorFactory,
} from './validators';

const BACKEND_METHODS = [
  'connect',
  'acquire',
  'extend',
  'release',
  'discard',
  'claim',
  'isLocked',
  'health',
  'close',
] as const;

const KNOWN_OPTIONS = new Set<string>([
  'connections',
  'clients',
  'backend',
  'stores',
  'keyPrefix',
  'ttl',
  'retry',
  'driftFactor',
  'extendThreshold',
  'shutdownTimeout',
  'commandTimeout',
  'logger',
  'metricName',
  'openTelemetry',
  'identity',
  'isGlobal',
]);

/**
 * Validates retry options and merges them over `base`.
 * @internal
 */
export function resolveRetry(
  field: string,
  retry: RetryOptions | undefined,
  base: ResolvedRetry,
  fail: ErrorFactory = configError,
): ResolvedRetry {
  if (retry === undefined) return base;
  if (retry === null || typeof retry !== 'object') {
    throw fail(field, 'must be an object { count, delay, maxDelay, jitter }');
  }
  const out: ResolvedRetry = {
    count:
      retry.count === undefined
        ? base.count
        : checkInteger(`${field}.count`, retry.count, 0, 1_000, fail),
    delay:
      retry.delay === undefined
        ? base.delay
        : checkInteger(`${field}.delay`, retry.delay, 0, undefined, fail),
    maxDelay:
      retry.maxDelay === undefined
        ? base.maxDelay
        : checkInteger(`${field}.maxDelay`, retry.maxDelay, 0, undefined, fail),
    jitter:
      retry.jitter === undefined
        ? base.jitter
        : checkNumber(`${field}.jitter`, retry.jitter, 0, 1, fail),
  };
  if (out.maxDelay < out.delay) {
    throw fail(
      `${field}.maxDelay`,
      `must be at least retry.delay (${out.delay}), got ${out.maxDelay}`,
    );
  }
  return out;
}

/**
 * When auto-extension renews a lock of `ttl` ms: `extendThreshold` ms before it expires, or at half
 * the TTL by default. The one place that default lives.
 * @internal
 */
export function extendThresholdFor(ttl: number, extendThreshold: number | undefined): number {
  return extendThreshold ?? Math.floor(ttl / 2);
}

/**
 * Checks that auto-extension has room to run for a lock of `ttl` ms.
 * @internal
 */
export function checkExtendWindow(
  ttl: number,
  extendThreshold: number | undefined,
  field: string,
  fail: ErrorFactory = configError,
): void {
  const threshold = extendThresholdFor(ttl, extendThreshold);
  if (ttl - threshold < MIN_EXTEND_WINDOW_MS) {
    throw fail(
      field,
      `${ttl} ms is too short to auto-extend: it must be at least extendThreshold (${threshold} ms` +
        `${extendThreshold === undefined ? ', half the TTL by default' : ''}) + ${MIN_EXTEND_WINDOW_MS} ms`,
    );
  }
}

function resolveLogger(logger: unknown): LoggerService | null {
  if (logger === false) return null;
  if (logger === undefined) return new Logger('DistributedLock');
  if (!isLoggerService(logger)) {
    throw configError('logger', 'must be a Nest LoggerService (with log, warn and error) or false');
  }
  return logger;
}

/** Checks that `backend` implements `LockBackend`. @throws DistributedLockConfigError naming `field` */
function checkBackend(field: string, backend: unknown): void {
  const missing = BACKEND_METHODS.filter(
    (m) => typeof (backend as Record<string, unknown> | null)?.[m] !== 'function',
  );
  if (backend === null || typeof backend !== 'object' || missing.length > 0) {
    throw configError(field, Messages.notABackend(missing));
  }
}

/** Validates `stores`: names (not `'default'`, not empty) and backends. */
function resolveStores(stores: unknown): ReadonlyMap<string, LockBackend> {
  const resolved = new Map<string, LockBackend>();
  if (stores === undefined) return resolved;
  if (stores === null || typeof stores !== 'object' || Array.isArray(stores)) {
    throw configError('stores', Messages.storesShape);
  }
  for (const [name, backend] of Object.entries(stores as Record<string, unknown>)) {
    if (name === DEFAULT_STORE || name.length === 0) {
      throw configError(`stores.${name}`, Messages.storeNameTaken(name));
    }
    checkBackend(`stores.${name}`, backend);
    if (resolved.has(name)) continue;
    resolved.set(name, backend as LockBackend);
  }
  return resolved;
}

function resolveMetricName(metricName: unknown): ((key: string) => string) | undefined {
  if (metricName === undefined) return undefined;
  if (typeof metricName !== 'function') {
    throw configError('metricName', 'must be a function (key: string) => string');
  }
  return metricName as (key: string) => string;
}

function isLoggerService(value: unknown): value is LoggerService {
  const candidate = value as Partial<LoggerService> | null;
  return !(
    !candidate ||
    typeof candidate !== 'object' ||
    typeof candidate.log !== 'function' ||
    typeof candidate.warn !== 'function' ||
    typeof candidate.error !== 'function'
  );
}

/** Longest `identity` accepted: it is stored with every lock. */
const MAX_IDENTITY_LENGTH = 200;

/** Validates `identity`; the default is `<hostname>:<pid>`. */
function checkIdentity(identity: unknown): string {
  if (identity === undefined) return `${hostname()}:${process.pid}`;
  if (typeof identity !== 'string' || identity.length === 0) {
    throw configError('identity', Messages.badIdentity(identity, MAX_IDENTITY_LENGTH));
  }
  if (
    identity.length > MAX_IDENTITY_LENGTH ||
    [...identity].some((c) => c < ' ' || c === '\u007f')
  ) {
    throw configError('identity', Messages.badIdentity(identity, MAX_IDENTITY_LENGTH));
  }
  return identity;
}

/**
 * Validates module options and fills in defaults. Throws {@link DistributedLockConfigError} naming the
 * first invalid option; performs no I/O.
 * @internal
 */
export function validateModuleOptions(raw: DistributedLockModuleOptions): ResolvedLockOptions {
  if (raw === null || typeof raw !== 'object') {
    throw configError('options', 'must be an object');
  }
  for (const name of Object.keys(raw)) {
    if (!KNOWN_OPTIONS.has(name)) {
      throw configError(name, `is not an option; allowed: ${[...KNOWN_OPTIONS].join(', ')}`);
    }
  }
  const { connections, clients, backend } = raw;
  let redis: Pick<ResolvedLockOptions, 'connections' | 'clients'> = {};
  const given = (['connections', 'clients', 'backend'] as const).filter(
    (name) => raw[name] !== undefined,
  );
  if (given.length > 1) {
    throw configError(given[0], Messages.bothConnections(given));
  }
  if (backend !== undefined) {
    checkBackend('backend', backend);
  } else {
    redis = checkRedisConnections(connections, clients);
  }

  const keyPrefix = checkKeyPrefix(raw.keyPrefix);
  const driftFactor = checkDriftFactor(raw.driftFactor);
  const minTtl = smallestTtl(driftFactor);
  const ttl = raw.ttl === undefined ? DEFAULTS.ttl : checkTtl('ttl', raw.ttl, minTtl);
  const extendThreshold =
    raw.extendThreshold === undefined
      ? undefined
      : checkInteger('extendThreshold', raw.extendThreshold, 1);
  if (extendThreshold !== undefined) checkExtendWindow(ttl, extendThreshold, 'ttl');

  return {
    ...redis,
    backend,
    stores: resolveStores(raw.stores),
    keyPrefix,
    ttl,
    retry: resolveRetry('retry', raw.retry, DEFAULTS.retry),
    driftFactor,
    minTtl,
    extendThreshold,
    shutdownTimeout:
      raw.shutdownTimeout === undefined
        ? DEFAULTS.shutdownTimeout
        : checkInteger('shutdownTimeout', raw.shutdownTimeout, 0),
    commandTimeout: checkCommandTimeout(raw.commandTimeout),
    logger: resolveLogger(raw.logger),
    metricName: resolveMetricName(raw.metricName),
    openTelemetry:
      raw.openTelemetry === undefined ? true : checkBoolean('openTelemetry', raw.openTelemetry),
    identity: checkIdentity(raw.identity),
  };
}
