import { Logger, type LoggerService } from '@nestjs/common';
import type { Cluster, Redis } from 'ioredis';
import { Messages } from '../distributed-lock.messages';
import { DEFAULTS } from '../options/resolved-options';
import { checkInteger, checkNumber, configError } from '../options/validators';
import type { RedisBackendOptions, RedisConnection } from './redis-backend-options.interface';

/** The Redis backend's options after validation, defaults filled in. @internal */
export interface ResolvedRedisOptions {
  readonly connections?: RedisConnection[];
  readonly clients?: Array<Redis | Cluster>;
  readonly keyPrefix: string;
  readonly driftFactor: number;
  readonly commandTimeout: number;
  readonly logger: LoggerService | null;
}

const KNOWN = new Set<string>([
  'connections',
  'clients',
  'keyPrefix',
  'driftFactor',
  'commandTimeout',
  'logger',
]);

/**
 * Checks `connections` / `clients`: exactly one of them, a non-empty list of URLs / `RedisOptions`
 * or of ioredis clients. Shared by `redisBackend()` and the module's `connections` shorthand.
 * @throws DistributedLockConfigError naming the field (`connections[1]`, ...)
 * @internal
 */
export function checkRedisConnections(
  connections: unknown,
  clients: unknown,
): { connections?: RedisConnection[]; clients?: Array<Redis | Cluster> } {
  if (connections !== undefined && clients !== undefined) {
    throw configError('connections', Messages.bothConnections(['connections', 'clients']));
  }
  const list: unknown = connections ?? clients;
  const field = connections !== undefined ? 'connections' : 'clients';
  if (!Array.isArray(list) || list.length === 0) {
    throw configError(
      connections !== undefined || clients !== undefined ? field : 'connections',
      Messages.noConnections,
    );
  }
  list.forEach((entry: unknown, i) => {
    const ok =
      field === 'connections'
        ? (typeof entry === 'string' && entry.length > 0) ||
          (entry !== null && typeof entry === 'object')
        : entry !== null &&
          typeof entry === 'object' &&
          typeof (entry as { evalsha?: unknown }).evalsha === 'function';
    if (!ok) {
      throw configError(
        `${field}[${i}]`,
        field === 'connections'
          ? 'must be a redis:// or rediss:// URL string or an ioredis RedisOptions object'
          : 'must be an ioredis Redis or Cluster instance',
      );
    }
  });
  return field === 'connections'
    ? { connections: list as RedisConnection[] }
    : { clients: list as Array<Redis | Cluster> };
}

/** Checks `keyPrefix`. @internal */
export function checkKeyPrefix(keyPrefix: unknown): string {
  if (keyPrefix === undefined) return DEFAULTS.keyPrefix;
  if (typeof keyPrefix !== 'string') throw configError('keyPrefix', 'must be a string');
  return keyPrefix;
}

/** Checks `driftFactor` (0 to 0.5). @internal */
export function checkDriftFactor(driftFactor: unknown): number {
  return driftFactor === undefined
    ? DEFAULTS.driftFactor
    : checkNumber('driftFactor', driftFactor, 0, 0.5);
}

/** Checks `commandTimeout` (ms, at least 1). @internal */
export function checkCommandTimeout(commandTimeout: unknown): number {
  return commandTimeout === undefined
    ? DEFAULTS.commandTimeout
    : checkInteger('commandTimeout', commandTimeout, 1);
}

/**
 * Validates {@link RedisBackendOptions} and fills in defaults; performs no I/O.
 * @throws DistributedLockConfigError naming the first invalid option
 * @internal
 */
export function resolveRedisOptions(raw: RedisBackendOptions): ResolvedRedisOptions {
  if (raw === null || typeof raw !== 'object') throw configError('options', 'must be an object');
  for (const name of Object.keys(raw)) {
    if (!KNOWN.has(name)) {
      throw configError(
        name,
        `is not an option of redisBackend(); allowed: ${[...KNOWN].join(', ')}`,
      );
    }
  }
  const logger = raw.logger;
  if (
    logger !== undefined &&
    logger !== false &&
    (logger === null || typeof logger !== 'object' || typeof logger.warn !== 'function')
  ) {
    throw configError('logger', 'must be a Nest LoggerService (with log, warn and error) or false');
  }
  return {
    ...checkRedisConnections(raw.connections, raw.clients),
    keyPrefix: checkKeyPrefix(raw.keyPrefix),
    driftFactor: checkDriftFactor(raw.driftFactor),
    commandTimeout: checkCommandTimeout(raw.commandTimeout),
    logger: logger === false ? null : (logger ?? new Logger('DistributedLock')),
  };
}
